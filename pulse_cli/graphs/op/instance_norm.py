"""Instance norm with a per-plane affine as a compiled Paddle custom op (``instance_norm.cc``).

Paddle's CPU ``instance_norm`` and its backward are single-threaded native kernels (the backward
alone 0.4 s of a 1024 px StyleGAN search step); the custom op shares the planes among the
OpenMP thread count in force and runs under ``paddle.jit.to_static`` like any op. It is built
once per Paddle version with the C++ compiler Paddle's extension loader uses (about 20 s), into
Paddle's extension folder, and loaded on first use. Paddle's ``F.instance_norm`` is used instead
where it cannot be: no compiler (or the build fails: ``why_not_compiled`` says which), not on the
CPU, in exports, or ``PULSE_COMPILED_OPS=0``. Both give the same values to float32 rounding.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import paddle
import paddle.nn.functional as F

from pulse_cli.errors import describe
from pulse_cli.graphs.tracing import exporting
from pulse_cli.quiet import captured_output
from pulse_cli.threads import openmp_threads

ENV_SWITCH = "PULSE_COMPILED_OPS"  # "0": Paddle's own ops only
SOURCE = Path(__file__).with_name("instance_norm.cc")
EPS = 1e-5  # torch's InstanceNorm2d, as StyleGAN uses it


def compiled() -> Callable[..., list[paddle.Tensor]] | None:
    """The compiled op (built and loaded on first use), or None when it cannot be had here or
    ``PULSE_COMPILED_OPS=0`` turns it off (``why_not_compiled`` says which)."""
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return None
    return _built()[0]


def why_not_compiled() -> str | None:
    """Why ``compiled()`` is None: turned off, no C++ compiler, or the build's error; None when it
    is not."""
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return f"compiled ops are turned off ({ENV_SWITCH}=0)"
    return _built()[1]


def compiler() -> str | None:
    """The C++ compiler Paddle's extension loader builds with (``$CXX``, else ``c++``, on the
    PATH), or None when there is none."""
    return shutil.which(os.environ.get("CXX", "c++"))


@functools.cache
def _built() -> tuple[Callable[..., list[paddle.Tensor]] | None, str | None]:
    # Once per process: loading the library a second time registers no op (the module comes
    # back empty).
    if compiler() is None:
        return None, f"no C++ compiler ({os.environ.get('CXX', 'c++')}) for Paddle's extension loader"
    from paddle.utils.cpp_extension import get_build_directory, load

    # Paddle's extension folder (PADDLE_EXTENSION_DIR, else ~/.cache/paddle_extensions), not the
    # model cache: every process shares one build whatever its PULSE_CACHE_DIR.
    build = Path(get_build_directory()) / f"pulse-ops-paddle-{paddle.__version__}"
    build.mkdir(parents=True, exist_ok=True)
    module = failure = None
    # One build at a time: parallel pulse processes share the cache folder.
    with open(build / ".lock", "w") as lock, captured_output() as printed:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            module = load(
                name="pulse_ops", sources=[str(SOURCE)], extra_cxx_cflags=["-O3"],
                build_directory=str(build), verbose=False,
            )  # fmt: skip
        except Exception as exc:  # no headers, a failed build: Paddle's op will do
            failure = describe(exc)
    if module is None:
        error = next((line.strip() for line in printed if "error" in line.lower()), failure)
        return None, f"the build failed: {error}"
    op = getattr(module, "pulse_instance_norm", None)
    if op is None:
        return None, "the built library registers no pulse_instance_norm op"
    return op, None


def instance_norm(x: paddle.Tensor, weight: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
    """Each [H, W] plane of ``x`` [N, C, H, W] normalized on its own (eps 1e-5), then times
    ``weight`` and plus ``bias`` [C] per channel: the compiled op on the CPU where it is built,
    else (and in exports, which must hold Paddle's ops only) ``F.instance_norm``."""
    op = compiled() if paddle.get_device() == "cpu" and not exporting() else None
    if op is None:
        return F.instance_norm(x, weight=weight, bias=bias, eps=EPS)
    return op(x, weight, bias, EPS, _threads())[0]


@functools.cache
def _threads() -> int:
    # The OpenMP count pulse_cli.threads put in force at start-up, read once: reading it costs
    # about a millisecond (the process's library list), and dygraph calls this 18 times a step.
    return openmp_threads() or 1
