"""MobileStyleGAN's styled conv (a modulated depthwise 3×3 conv, a pointwise 1×1 conv, then noise,
bias and leaky ReLU 0.2) as one compiled Paddle custom op (``styled_conv.cc``), forward and
backward, for networks whose parameters are frozen, as a search's are.

Under ``to_static`` + oneDNN the two convs run channels-last forward and blocked backward, so every
full-size tensor around them was reordered into and out of those layouts, and each one the
backward keeps once more where the forward program ends: at 1024 px the reorders took 330 ms of
the step against 187 ms of convolution (DEVELOPERS.md, issue 20). The op keeps Paddle's plain
layout throughout (its input, output and their gradients), runs the depthwise conv as a stencil
along rows and the pointwise one as a GEMM (oneDNN's ``dnnl_sgemm``), and keeps only its input and
output for the backward. Its gradients are the input's, the modulation's and the noise's: where a
weight or the bias takes a gradient (``fused`` is False), and where it cannot run (no compiler,
not on the CPU, a Paddle without oneDNN, in exports, ``PULSE_COMPILED_OPS=0``, a graph built for
any batch), the caller uses Paddle's convs.
"""

from __future__ import annotations

import paddle

from pulse_cli.graphs.op import library
from pulse_cli.graphs.op.noise_bias_leaky_relu import SLOPE

NAME = "pulse_styled_conv"


def fused(x: paddle.Tensor, noise: paddle.Tensor, weights: list[paddle.Tensor]) -> bool:
    """Whether ``styled_conv`` runs the compiled op for ``x`` [N, C, H, W] and ``noise``
    [N, 1, H, W] here, ``weights`` (the convs' and the bias) taking no gradient. Decided where a
    graph is built: ``CompiledSynthesis`` rebuilds its program when parameters thaw or freeze."""
    batch = x.shape[0]
    return (
        isinstance(batch, int)
        and noise.shape[0] == batch
        and all(weight.stop_gradient for weight in weights)
        and bool(paddle.base.core.is_compiled_with_mkldnn())  # dnnl_sgemm: oneDNN's GEMM
        and library.op_for(NAME) is not None
    )


def styled_conv(
    x: paddle.Tensor,
    depthwise: paddle.Tensor,
    modulation: paddle.Tensor,
    pointwise: paddle.Tensor,
    noise: paddle.Tensor,
    bias: paddle.Tensor,
) -> paddle.Tensor:
    """``leaky_relu(conv1x1(conv3x3_depthwise(x · modulation, depthwise, padding=1), pointwise) +
    noise + bias, 0.2)`` by the compiled op, for ``x`` [N, C, H, W], ``depthwise`` [C, 1, 3, 3],
    ``modulation`` [N, C], ``pointwise`` [O, C, 1, 1], ``noise`` [N, 1, H, W] and ``bias`` of O
    values: [N, O, H, W]; only where ``fused``. ``x`` must be in Paddle's plain layout, as must the
    gradient that reaches the output (a compiled op reads oneDNN's memory as it is)."""
    op = library.op_for(NAME)
    return op(x, depthwise, modulation, pointwise, noise, bias, SLOPE, library.threads())
