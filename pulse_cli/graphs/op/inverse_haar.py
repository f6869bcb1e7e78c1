"""MobileStyleGAN's inverse Haar wavelet transform of style-scaled bands as one compiled Paddle custom
op (``inverse_haar.cc``), forward and backward.

Paddle runs it as a regrouping of the bands (two slices, a reshape and a concat), a grouped 1×1
conv of four channels a group and a ``pixel_shuffle``: under ``to_static`` + oneDNN each a
full-size pass, with layout reorders around the native ``pixel_shuffle`` both ways. The op reads
the bands where MobileStyleGAN's layout has them and writes each 2×2 cell of the image in one
pass, and its backward makes the bands' and the scales' gradients in one pass more. Where it
cannot run (``fused`` is False: no compiler, not on the CPU, in exports, ``PULSE_COMPILED_OPS=0``,
a graph built for any batch) the caller uses Paddle's ops.
"""

from __future__ import annotations

import paddle

from pulse_cli.graphs.op import library

NAME = "pulse_inverse_haar"


def fused(x: paddle.Tensor) -> bool:
    """Whether ``inverse_haar`` runs the compiled op for bands ``x`` [N, 4C, h, w] here."""
    return isinstance(x.shape[0], int) and library.op_for(NAME) is not None


def inverse_haar(x: paddle.Tensor, scale: paddle.Tensor) -> paddle.Tensor:
    """The inverse Haar transform of MobileStyleGAN's bands ``x`` [N, 4C, h, w] (the low bands of
    the C channels, then their three high bands, channel c's at C + 3c .. C + 3c + 2), each band
    first multiplied by ``scale`` [N, 4C]: [N, C, 2h, 2w]; only where ``fused(x)``. Both must be in
    Paddle's plain layout (a compiled op reads oneDNN's memory as it is), as must the gradient
    that reaches the output."""
    return library.op_for(NAME)(x, scale, library.threads())
