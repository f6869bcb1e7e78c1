"""How many threads Paddle's CPU kernels (oneDNN, MKL) run on: the OpenMP runtime's thread count.

Paddle's bootstrap (``paddle/base/__init__.py``) sets ``OMP_NUM_THREADS=1`` when it is unset, and
the Intel OpenMP runtime it ships (``paddle/libs/libiomp5.so``) reads it, so oneDNN runs every
convolution on one core of many (ONEDNN_VERBOSE: ``nthr:1``). ``apply`` gives that runtime the
cores this process may use (``os.sched_getaffinity``) with ``omp_set_num_threads``, shared out
between the workers ``paddle.distributed.launch`` started on this machine, and lets idle workers
sleep after 1 ms (``KMP_BLOCKTIME=1``, unless the user set it) so that they yield the cores soon.
A count the user set in ``OMP_NUM_THREADS`` is left in force. Where no OpenMP runtime is loaded
(a Paddle build without one) nothing is changed. More threads change the order of oneDNN's
reductions, so results agree with one thread's to float rounding, not bit for bit.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_THREADS = "OMP_NUM_THREADS"
# Intel's runtime keeps idle workers spinning 200 ms after each parallel region; on a busy machine
# they take the core the thread that goes on needs (measured: +10 % per 128 px search step, and
# PyTorch's 64 px step 7x slower with 2 threads than with 1 under load). Sleeping at once (0)
# costs a wake-up between every two ops instead: the 1024 px static step 10-15 % slower on free
# cores. 1 ms spans the gap between ops and bounds what a busy machine loses (no worse than 0 or
# 200 there, measured with two busy loops on the two cores).
ENV_BLOCKTIME = "KMP_BLOCKTIME"
BLOCKTIME_MS = 1
# paddle.distributed.launch: workers on this machine and this worker's rank among them (the
# collective launcher sets PADDLE_LOCAL_SIZE/PADDLE_LOCAL_RANK; the fleet one only the totals).
ENV_LOCAL_WORKERS = ("PADDLE_LOCAL_SIZE", "PADDLE_TRAINERS_NUM")
ENV_LOCAL_RANK = ("PADDLE_LOCAL_RANK", "PADDLE_RANK_IN_NODE", "PADDLE_TRAINER_ID")
OPENMP_LIBRARIES = ("libiomp5", "libgomp", "libomp")  # Intel's (Paddle's), GNU's, LLVM's

# OMP_NUM_THREADS as this module found it: before Paddle's bootstrap overwrote it, unless Paddle
# was imported first (then ``user_setting`` asks the process's initial environment).
_SEEN_BEFORE_PADDLE = None if "paddle" in sys.modules else (os.environ.get(ENV_THREADS),)


@dataclass(frozen=True)
class ThreadState:
    """The OpenMP thread count in force (``None`` where no OpenMP runtime is loaded), whether
    pulse set it, and a one-line ``description`` for reports (``pulse bench``)."""

    threads: int | None
    set_by_pulse: bool
    description: str


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _env_int(environ: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    for name in names:
        try:
            return int(environ[name])
        except (KeyError, ValueError):
            continue
    return None


def share_of_cores(cores: int, environ: Mapping[str, str] = os.environ) -> int:
    """This worker's share of ``cores`` when ``paddle.distributed.launch`` started several on this
    machine (the first ``cores % workers`` ranks get one more); all of them otherwise."""
    workers = max(1, _env_int(environ, ENV_LOCAL_WORKERS) or 1)
    rank = (_env_int(environ, ENV_LOCAL_RANK) or 0) % workers
    return max(1, cores // workers + (rank < cores % workers))


def _initial_environment(pid: int | str = "self") -> dict[str, str] | None:
    """The environment process ``pid`` was started with (Linux), before Python or Paddle changed it."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def _launched_by_paddle(environ: Mapping[str, str]) -> bool:
    return any(name in environ for name in ENV_LOCAL_WORKERS)


def user_setting() -> str | None:
    """``OMP_NUM_THREADS`` as the user set it, or ``None``. Paddle's import writes ``1`` there
    when it is unset (so once Paddle is in, an unset variable and a user's ``1`` look alike), and
    ``paddle.distributed.launch``, which imports Paddle, hands that ``1`` to its workers: there
    the launcher's own start-up environment says what the user set."""
    if _SEEN_BEFORE_PADDLE is not None:
        value = _SEEN_BEFORE_PADDLE[0]
    else:
        value = os.environ.get(ENV_THREADS)
        if value == "1":  # Paddle writes the user's count back, or 1 where there was none
            initial = _initial_environment()
            value = initial.get(ENV_THREADS) if initial is not None else None
    if value == "1" and _launched_by_paddle(os.environ):
        launcher = _initial_environment(os.getppid())
        value = launcher.get(ENV_THREADS) if launcher is not None else None
    return value


def user_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for a child process, with ``OMP_NUM_THREADS`` as the user set it (or unset),
    not the ``1`` Paddle's import wrote: otherwise the child would take it for the user's."""
    child = dict(environ)
    user = user_setting()
    if user is None:
        child.pop(ENV_THREADS, None)
    else:
        child[ENV_THREADS] = user
    return child


def _loaded_libraries() -> list[str]:
    """Paths of the shared libraries mapped into this process (Linux), in load order."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    fields = (line.split(maxsplit=5) for line in maps.splitlines())  # address … inode [path]
    return list(dict.fromkeys(f[5] for f in fields if len(f) == 6 and f[5].startswith("/")))


def _paddle_libraries() -> list[str]:
    """The libraries Paddle's wheel ships (``paddle/libs``): where ``/proc`` is not there to ask."""
    paddle = sys.modules.get("paddle")
    if paddle is None or not getattr(paddle, "__file__", None):
        return []
    folder = Path(paddle.__file__).parent / "libs"
    return sorted(str(path) for path in folder.glob("*")) if folder.is_dir() else []


def openmp_runtimes() -> list[ctypes.CDLL]:
    """The OpenMP runtimes loaded in this process, Paddle's first."""
    libraries = _loaded_libraries() or _paddle_libraries()
    found = [path for path in libraries if Path(path).name.startswith(OPENMP_LIBRARIES)]
    found.sort(key=lambda path: "paddle" not in Path(path).parts)
    runtimes = []
    for path in found:
        try:
            library = ctypes.CDLL(path)
            library.omp_set_num_threads.argtypes = [ctypes.c_int]
            library.omp_get_max_threads.restype = ctypes.c_int
        except (OSError, AttributeError):  # not loadable here, or not a runtime after all
            continue
        runtimes.append(library)
    return runtimes


def openmp_threads() -> int | None:
    """The thread count a parallel region of Paddle's OpenMP runtime gets now (``None``: none loaded)."""
    runtimes = openmp_runtimes()
    return runtimes[0].omp_get_max_threads() if runtimes else None


@contextlib.contextmanager
def kept() -> Iterator[None]:
    """Put the calling thread's OpenMP count back after the block, for code that resets it (a
    Paddle Inference predictor's ``run`` leaves it at 1, for every op after it too)."""
    runtimes = openmp_runtimes()
    counts = [runtime.omp_get_max_threads() for runtime in runtimes]
    try:
        yield
    finally:
        for runtime, count in zip(runtimes, counts):
            runtime.omp_set_num_threads(count)


def apply(threads: int | None = None) -> ThreadState:
    """Give Paddle's OpenMP runtime (hence oneDNN) ``threads``, or by default this process's share
    of the cores, and say what is in force. Imports Paddle (its runtime comes with it); a count
    the user set in ``OMP_NUM_THREADS`` is kept unless ``threads`` is given. Applies to the
    calling thread and, with Paddle's Intel runtime, to threads started later (Paddle's executor
    runs static programs on threads of its own).
    """
    user = user_setting()  # read before Paddle's import overwrites it
    import paddle  # noqa: F401  (loads its OpenMP runtime)

    runtimes = openmp_runtimes()
    if not runtimes:
        return ThreadState(None, False, "threads: no OpenMP runtime loaded, left as they are")
    if threads is None and user is not None:
        count = runtimes[0].omp_get_max_threads()
        return ThreadState(count, False, f"threads: {count} ({ENV_THREADS}={user} as set in the environment)")
    cores = available_cores()
    count = threads if threads is not None else share_of_cores(cores)
    if count < 1:
        raise ValueError(f"thread count must be at least 1, got {count}")
    set_blocktime = ENV_BLOCKTIME not in os.environ
    for runtime in runtimes:
        runtime.omp_set_num_threads(count)  # the calling thread's count
        if hasattr(runtime, "kmp_set_defaults"):  # Intel's and LLVM's: threads started later too
            runtime.kmp_set_defaults(f"{ENV_THREADS}={count}".encode())
        if set_blocktime and hasattr(runtime, "kmp_set_blocktime"):
            runtime.kmp_set_blocktime(BLOCKTIME_MS)  # the calling thread's team
            runtime.kmp_set_defaults(f"{ENV_BLOCKTIME}={BLOCKTIME_MS}".encode())
    if threads is not None:
        why = "as asked"
    elif count == cores:
        why = f"the {cores} cores this process may use"
    else:
        why = f"a share of the {cores} cores for {_env_int(os.environ, ENV_LOCAL_WORKERS)} local workers"
    plural = "s" if count > 1 else ""
    return ThreadState(count, True, f"threads: {count} OpenMP thread{plural} for oneDNN ({why})")
