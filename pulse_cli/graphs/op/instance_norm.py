"""Instance norm with a per-plane affine as a compiled Paddle custom op (``instance_norm.cc``).

Paddle's CPU ``instance_norm`` and its backward are single-threaded native kernels (the backward
alone 0.4 s of a 1024 px StyleGAN search step); the custom op shares the planes among the
OpenMP thread count in force and runs under ``paddle.jit.to_static`` like any op. It is built
with the others (``library``) and loaded on first use. Paddle's ``F.instance_norm`` is used
instead where it cannot be: no compiler (or the build fails), not on the CPU, in exports, or
``PULSE_COMPILED_OPS=0``. Both give the same values to float32 rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import paddle
import paddle.nn.functional as F

from pulse_cli.graphs.op import library
from pulse_cli.graphs.op.library import ENV_SWITCH

__all__ = ["ENV_SWITCH", "EPS", "compiled", "instance_norm"]

EPS = 1e-5  # torch's InstanceNorm2d, as StyleGAN uses it
NAME = "pulse_instance_norm"


def compiled() -> Callable[..., list[paddle.Tensor]] | None:
    """The compiled op (built and loaded on first use), or None when it cannot be had here or
    ``PULSE_COMPILED_OPS=0`` turns it off."""
    return library.op(NAME)


def instance_norm(x: paddle.Tensor, weight: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
    """Each [H, W] plane of ``x`` [N, C, H, W] normalized on its own (eps 1e-5), then times
    ``weight`` and plus ``bias`` [C] per channel: the compiled op on the CPU where it is built,
    else (and in exports, which must hold Paddle's ops only) ``F.instance_norm``."""
    op = library.op_for(NAME)
    if op is None:
        return F.instance_norm(x, weight=weight, bias=bias, eps=EPS)
    return op(x, weight, bias, EPS, library.threads())[0]
