"""The ``pulse`` command line: parses arguments, calls the library, reports."""

from __future__ import annotations

import sys

from pulse_cli.cli.console import USAGE_ERROR, error_line
from pulse_cli.quiet import quiet_third_party
from pulse_cli.runtimes import missing_runtimes_message

VERBOSE = "--verbose"


def verbose_requested(argv: list[str]) -> bool:
    """Whether ``pulse --verbose …`` was asked for: the option before the command's name."""
    for arg in argv:
        if arg == VERBOSE:
            return True
        if not arg.startswith("-"):
            return False
    return False


# Before the commands import Paddle: a missing runtime is one line, not an ImportError traceback.
if (missing := missing_runtimes_message()) is not None:
    error_line(missing)
    sys.exit(USAGE_ERROR)

# Before Paddle is imported (by the command modules): glog reads its level once, at import.
quiet_third_party(verbose=verbose_requested(sys.argv[1:]))

# Before Paddle is imported: its bootstrap overwrites OMP_NUM_THREADS, which threads reads first.
from pulse_cli import allocator, threads  # noqa: E402, I001

# Each command module registers its commands on ``app`` when imported.
from pulse_cli.cli import (  # noqa: E402, F401
    bench,
    demo,
    export,
    faces,
    fit_gaussian,
    models,
    niqe,
    plugins,
    report,
    upsample,
)
from pulse_cli.cli.app import app  # noqa: E402


def main() -> None:
    """Entry point of the ``pulse`` console script: the allocator setting first, before any
    command has allocated a tensor (glibc's thresholds apply to blocks allocated after them), and
    oneDNN's thread count (Paddle's import set it to one), then the command."""
    try:
        allocator.apply(allocator.requested_mode())
    except ValueError as exc:
        error_line(f"{allocator.ENV_MODE}: {exc}")
        raise SystemExit(USAGE_ERROR) from None
    threads.apply()
    app()
