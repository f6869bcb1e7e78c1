"""How the C allocator is tuned for the big, short-lived tensors of a Paddle run on CPU.

Paddle's CPU tensors come from ``malloc`` and go back to ``free`` after each op. glibc serves
blocks above its mmap threshold (at most 32 MiB even after its dynamic raise; a 1024 px StyleGAN
layer is 64 MiB per image) with a fresh ``mmap`` and returns them with ``munmap``, and trims
the heap's free top above 128 KiB: every op then page-faults its output in again, zero-filled by
the kernel. Two cures, best first:

- tcmalloc (Debian's ``libtcmalloc-minimal4``), preloaded by re-executing the process once at
  start-up (``restart_with_preload``): it keeps freed spans for reuse and packs them well, as
  fast as the second cure and at the default's peak memory;
- otherwise glibc with both thresholds raised by ``mallopt``: the memory stays mapped and is
  reused, but freed blocks stay in the heap, so the peak grows (5-35 %).

Either more than halves a 1024 px search step; it changes where memory comes from, never what is
computed. Set before the first big tensor is allocated (at start-up); glibc only (elsewhere,
or when the user tuned malloc through the environment or preloads another allocator, nothing
is changed).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

MODES = ("tuned", "default")
ENV_MODE = "PULSE_ALLOCATOR"  # tuned (the default) or default: glibc's own settings

# mallopt parameters (malloc.h) and the values set: the largest an int holds, so that no tensor
# of a batch of up to 32 images at 1024 px is ever given back between ops.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TUNED_BYTES = 2**31 - 1
# Set by a user who tunes malloc (or swaps it) through the environment: left as they are.
USER_SETTINGS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "GLIBC_TUNABLES",
    "LD_PRELOAD",
)
# tcmalloc, and what pulse sets when it preloads it: the marker says the LD_PRELOAD is pulse's own
# (so ``apply`` reports it and a child process for the default mode takes it off); the report
# threshold keeps tcmalloc from printing a line for every block over 1 GiB (a batch at 1024 px).
TCMALLOC = "tcmalloc_minimal"
PRELOADED = "PULSE_ALLOCATOR_PRELOADED"
_PRELOAD_SETTINGS = {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(2**62)}


@dataclass(frozen=True)
class AllocatorState:
    """The allocator setting in force: the mode asked for, whether the tuning is applied, and a
    one-line ``description`` for reports (``pulse bench``)."""

    mode: str
    tuned: bool
    description: str


def requested_mode() -> str:
    """The mode ``PULSE_ALLOCATOR`` asks for (``tuned`` when unset)."""
    return os.environ.get(ENV_MODE, "tuned").strip().lower() or "tuned"


def tcmalloc_library() -> str | None:
    """The installed tcmalloc's file name (``libtcmalloc_minimal.so.4``), or None."""
    return ctypes.util.find_library(TCMALLOC)


def environment_for(mode: str, environ: Mapping[str, str], library: str | None = None) -> dict[str, str]:
    """``environ`` for a child process that should run under allocator ``mode``: pulse's own
    tcmalloc preload taken off (the default mode, or a library now gone), or put on (the tuned
    mode, with ``library``, default the installed tcmalloc, unless the user set malloc up)."""
    env = dict(environ)
    if env.pop(PRELOADED, None) is not None:
        env.pop("LD_PRELOAD", None)
        for name in _PRELOAD_SETTINGS:
            env.pop(name, None)
    library = library or tcmalloc_library()
    if mode != "tuned" or library is None or any(env.get(name) for name in USER_SETTINGS):
        return env
    return {**env, "LD_PRELOAD": library, PRELOADED: library, **_PRELOAD_SETTINGS}


def restart_with_preload() -> None:
    """Run this process again from the start with tcmalloc preloaded, when the mode asked for
    (``PULSE_ALLOCATOR``) is tuned, tcmalloc is installed, the user left malloc alone and this is
    not already the restarted process; otherwise (or when the exec fails) simply return.
    Call it first thing: nothing done before it survives."""
    if os.environ.get(PRELOADED) or requested_mode() != "tuned" or _glibc() is None:
        return
    env = environment_for("tuned", os.environ)
    if PRELOADED not in env:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    except OSError:
        return  # the mallopt tuning still applies


def _tcmalloc_in_use() -> bool:
    return hasattr(ctypes.CDLL(None), "tc_version")


def _glibc() -> ctypes.CDLL | None:
    if not os.confstr_names.get("CS_GNU_LIBC_VERSION") or not os.confstr("CS_GNU_LIBC_VERSION"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def apply(mode: str = "tuned") -> AllocatorState:
    """Put allocator ``mode`` in force for this process and say what is in force.

    ``tuned`` is tcmalloc when ``restart_with_preload`` preloaded it, else glibc's mmap and trim
    thresholds raised with ``mallopt``; ``default`` leaves malloc as it is. Call it before the
    first big tensor is allocated: a block already mmapped is still unmapped when freed.
    """
    if mode not in MODES:
        raise ValueError(f"unknown allocator mode {mode!r}; known: {', '.join(MODES)}")
    if mode == "default":
        return AllocatorState(mode, False, "default: the C library's own malloc settings")
    if os.environ.get(PRELOADED) and _tcmalloc_in_use():
        return AllocatorState(mode, True, f"tuned: tcmalloc ({os.environ[PRELOADED]}, preloaded)")
    user_set = [name for name in USER_SETTINGS if os.environ.get(name)]
    if user_set:
        return AllocatorState(mode, False, f"as set in the environment ({', '.join(user_set)})")
    libc = _glibc()
    if libc is None:
        return AllocatorState(mode, False, "default: not glibc, nothing to tune")
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    # glibc before 2.26 refuses an mmap threshold above 32 MiB (HEAP_MAX_SIZE / 2): then nothing.
    if not libc.mallopt(M_MMAP_THRESHOLD, TUNED_BYTES):
        return AllocatorState(mode, False, "default: this glibc refuses a large mmap threshold")
    libc.mallopt(M_TRIM_THRESHOLD, TUNED_BYTES)
    return AllocatorState(mode, True, "tuned: glibc mmap and trim thresholds 2 GiB (mallopt)")
