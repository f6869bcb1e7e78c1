"""Running a child process that obeys file modes even when the tests run as root (as CI does).

Root reads and writes files whatever their mode because it holds CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH. Dropping both from the child's capability bounding set before it execs
takes them away from the program it runs, which then meets a read-only folder or an unreadable
file as any user would: a test of a permission error stays a real one under root instead of
skipping.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from typing import Any

PR_CAPBSET_DROP = 24  # <linux/prctl.h>
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2  # <linux/capability.h>


def _drop_file_mode_override() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


def run_obeying_file_modes(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(args)`` (text output captured) in a child that file modes bind, root or not."""
    preexec = _drop_file_mode_override if os.geteuid() == 0 else None
    return subprocess.run(args, capture_output=True, text=True, preexec_fn=preexec, **kwargs)


def python_obeying_file_modes(code: str, **kwargs: Any) -> subprocess.CompletedProcess:
    """This interpreter running ``code`` under ``run_obeying_file_modes``."""
    return run_obeying_file_modes([sys.executable, "-c", code], **kwargs)
