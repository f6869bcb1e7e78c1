"""MobileStyleGAN's styled-conv epilogue, ``leaky_relu(x + noise + bias, 0.2)``, as one compiled
Paddle custom op (``noise_bias_leaky_relu.cc``), forward and backward.

Paddle runs it as two broadcast adds and a leaky ReLU under ``to_static`` + oneDNN: three
full-size passes, layout reorders around them, and in the backward a full-size copy of the
gradient for each add (DEVELOPERS.md, "CPU speed"); the op makes one pass each way, on the
OpenMP thread count in force, and keeps only its output for the backward. It is built with the
others (``library``); where it cannot run (``fused`` is False: no compiler, not on the CPU, in
exports, ``PULSE_COMPILED_OPS=0``, a graph built for any batch) the caller uses Paddle's ops.
"""

from __future__ import annotations

import paddle

from pulse_cli.graphs.op import library

NAME = "pulse_noise_bias_leaky_relu"
SLOPE = 0.2  # StyleGAN2's leaky ReLU, as MobileStyleGAN uses it


def fused(x: paddle.Tensor, noise: paddle.Tensor) -> bool:
    """Whether ``noise_bias_leaky_relu`` runs the compiled op for ``x`` [N, C, H, W] and ``noise``
    [N, 1, H, W] here (one noise map per image: the op does not broadcast over the batch)."""
    batch = x.shape[0]
    return isinstance(batch, int) and noise.shape[0] == batch and library.op_for(NAME) is not None


def noise_bias_leaky_relu(x: paddle.Tensor, noise: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
    """``leaky_relu(x + noise + bias, 0.2)`` by the compiled op, for ``x`` [N, C, H, W], ``noise``
    [N, 1, H, W] and ``bias`` of C values; only where ``fused(x, noise)``."""
    return library.op_for(NAME)(x, noise, bias, SLOPE, library.threads())
