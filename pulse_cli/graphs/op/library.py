"""The compiled library behind ``pulse_cli.graphs.op``: every ``*.cc`` beside this module (with the
``*.h`` they share, and ``onednn/``'s stand-in for oneDNN's header) built into one Paddle custom-op
library, once per Paddle version and set of sources, and loaded on first use.

Built with the C++ compiler Paddle's extension loader uses (about 20 s) into Paddle's extension
folder (``PADDLE_EXTENSION_DIR``, else ``~/.cache/paddle_extensions``), not the model cache: every
process shares one build whatever its ``PULSE_CACHE_DIR``. The folder is named for the Paddle
version and a hash of the sources, so two pulse versions never rebuild (and overwrite, under a
process that has it loaded) each other's library. Where it cannot be built (no compiler, a failed
build) or ``PULSE_COMPILED_OPS=0``, ``op`` answers None and the callers use Paddle's own ops.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import platform
import shutil
from collections.abc import Callable
from pathlib import Path

import paddle

from pulse_cli.errors import describe
from pulse_cli.graphs.tracing import exporting
from pulse_cli.quiet import captured_output
from pulse_cli.threads import openmp_threads

ENV_SWITCH = "PULSE_COMPILED_OPS"  # "0": Paddle's own ops only
SOURCES = tuple(sorted(Path(__file__).parent.glob("*.cc")))
HEADERS = tuple(sorted(Path(__file__).parent.glob("*.h")))  # included by the sources
# oneDNN's header as far as Paddle's onednn_context.h needs it (the wheels do not ship oneDNN's)
ONEDNN_SHIM = Path(__file__).parent / "onednn"
MODULE = "pulse_ops"
FIRST_BUILD = "built once for this Paddle version before the first step (about 20 s)"


def op(name: str) -> Callable[..., paddle.Tensor | list[paddle.Tensor]] | None:
    """The compiled op ``name`` (the library built and loaded on first use), or None when it cannot
    be had here or ``PULSE_COMPILED_OPS=0`` turns compiled ops off."""
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return None
    module = _built()[0]
    return None if module is None else getattr(module, name, None)


def why_not_compiled(name: str) -> str | None:
    """Why ``op(name)`` is None: turned off, no C++ compiler, the build's error, or a library without
    that op; None when it is not."""
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return f"compiled ops are turned off ({ENV_SWITCH}=0)"
    module, failure = _built()
    if module is None:
        return failure
    return None if hasattr(module, name) else f"the built library registers no {name} op"


def compiler() -> str | None:
    """The C++ compiler Paddle's extension loader builds with (``$CXX``, else ``c++``, on the
    PATH), or None when there is none."""
    return shutil.which(os.environ.get("CXX", "c++"))


def op_for(name: str) -> Callable[..., paddle.Tensor | list[paddle.Tensor]] | None:
    """``op(name)`` where a graph may hold it: on the CPU and not in an export (an exported graph
    must hold Paddle's ops only); None elsewhere."""
    return op(name) if paddle.get_device() == "cpu" and not exporting() else None


def build_pending() -> bool:
    """Whether the first compiled op this process runs will build the library first (about 20 s,
    once per Paddle version and set of sources; ``FIRST_BUILD`` says so in progress output)."""
    if os.environ.get(ENV_SWITCH, "1").strip() == "0" or compiler() is None or _built.cache_info().currsize:
        return False
    return not (_build_folder() / MODULE / f"{MODULE}.so").exists()


def _build_folder() -> Path:
    from paddle.utils.cpp_extension import get_build_directory

    shim = tuple(sorted(ONEDNN_SHIM.glob("*.hpp")))
    sources = b"".join(path.read_bytes() for path in SOURCES + HEADERS + shim)
    # the flags and the CPU they target: a library built for another CPU (a home folder shared
    # by several machines) could hold instructions this one lacks
    digest = hashlib.sha256(sources + " ".join(_flags()).encode() + _cpu_features()).hexdigest()[:12]
    return Path(get_build_directory()) / f"pulse-ops-paddle-{paddle.__version__}-{digest}"


def _cpu_features() -> bytes:
    """This CPU's instruction-set extensions as the kernel lists them (Linux), else its name."""
    try:
        with open("/proc/cpuinfo", "rb") as cpuinfo:
            return next((line for line in cpuinfo if line.startswith((b"flags", b"Features"))), b"")
    except OSError:
        return platform.machine().encode()


@functools.cache
def _built() -> tuple[object | None, str | None]:
    # Once per process: loading the library a second time registers no op (the module comes
    # back empty). The module, or None and why.
    if compiler() is None:
        return None, f"no C++ compiler ({os.environ.get('CXX', 'c++')}) for Paddle's extension loader"
    from paddle.utils.cpp_extension import load

    build = _build_folder()
    build.mkdir(parents=True, exist_ok=True)
    # One build at a time: parallel pulse processes share the folder.
    with open(build / ".lock", "w") as lock, captured_output() as printed:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return load(
                name=MODULE, sources=[str(source) for source in SOURCES], extra_cxx_cflags=_flags(),
                extra_include_paths=[str(ONEDNN_SHIM)], build_directory=str(build), verbose=False,
            ), None  # fmt: skip
        except Exception as exc:  # no headers, a failed build: Paddle's ops will do
            error = next((line.strip() for line in printed if "error" in line.lower()), describe(exc))
            return None, f"the build failed: {error}"


def _flags() -> list[str]:
    # Paddle's headers declare its oneDNN state only under the macro its own build had: set it
    # where Paddle has oneDNN kernels (the CPU wheels), for onednn_cache.cc.
    onednn = bool(paddle.base.core.is_compiled_with_mkldnn())
    # -fopenmp-simd: the `omp simd` loops alone, without an OpenMP runtime (see parallel.h).
    # -march=native on x86-64: the library is built where it runs, and the baseline ISA (SSE2)
    # left the styled conv's backward 1.7 times slower than AVX-512 did (DEVELOPERS.md, issue 20)
    native = ["-march=native"] if platform.machine().lower() in ("x86_64", "amd64") else []
    return ["-O3", "-fopenmp-simd", *native, *(["-DPADDLE_WITH_DNNL"] if onednn else [])]


@functools.cache
def threads() -> int:
    """The thread count a compiled op shares its work among: the OpenMP count ``pulse_cli.threads``
    put in force at start-up, read once (reading it costs about a millisecond, the process's
    library list, and dygraph calls the ops dozens of times a step)."""
    return openmp_threads() or 1
