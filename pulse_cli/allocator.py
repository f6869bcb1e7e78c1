"""How the C allocator is tuned for the big, short-lived tensors of a Paddle run on CPU.

Paddle's CPU tensors come from ``malloc`` and go back to ``free`` after each op. glibc serves
blocks above its mmap threshold (at most 32 MiB even after its dynamic raise; a 1024 px StyleGAN
layer is 64 MiB per image) with a fresh ``mmap`` and returns them with ``munmap``, and trims
the heap's free top above 128 KiB: every op then page-faults its output in again, zero-filled by
the kernel. Raising both thresholds with ``mallopt`` keeps that memory mapped and reused, which
more than halves a 1024 px search step; it changes where memory comes from, never what is
computed. Set before the first big tensor is allocated (at start-up); glibc only (elsewhere,
or when the user tuned malloc through the environment or preloads another allocator, nothing
is changed).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
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


def _glibc() -> ctypes.CDLL | None:
    if not os.confstr_names.get("CS_GNU_LIBC_VERSION") or not os.confstr("CS_GNU_LIBC_VERSION"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def apply(mode: str = "tuned") -> AllocatorState:
    """Put allocator ``mode`` in force for this process and say what is in force.

    ``tuned`` raises glibc's mmap and trim thresholds with ``mallopt``; ``default`` leaves
    malloc as it is. Call it before the first big tensor is allocated: a block already
    mmapped is still unmapped when freed.
    """
    if mode not in MODES:
        raise ValueError(f"unknown allocator mode {mode!r}; known: {', '.join(MODES)}")
    if mode == "default":
        return AllocatorState(mode, False, "default: the C library's own malloc settings")
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
