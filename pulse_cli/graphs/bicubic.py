"""PULSE's bicubic downscaler: how a generated image is compared with the low-resolution input."""

from __future__ import annotations

import functools

import numpy as np
import paddle
from paddle import nn


def bicubic_kernel(factor: int, a: float = -0.5) -> np.ndarray:
    """PULSE's normalized 1-D ``BicubicDownSample`` kernel: ``4 * factor`` taps of Keys' cubic with ``a``."""
    size = 4 * factor
    x = np.abs((np.arange(size, dtype=np.float64) - size // 2 + 0.5) / factor)
    near = (a + 2) * x**3 - (a + 3) * x**2 + 1
    far = a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    k = np.where(x <= 1, near, np.where(x < 2, far, 0.0))
    return (k / k.sum()).astype(np.float32)


@functools.lru_cache(maxsize=16)
def downscale_matrix(size: int, factor: int) -> np.ndarray:
    """PULSE's 1-D downscale of ``size`` samples as a matrix [size // factor, size]: the kernel at
    stride ``factor`` over the input reflect-padded by ``3 * factor`` (split as PULSE splits it),
    the padding folded into the matrix (a tap on a reflected sample adds to that sample's column)."""
    taps = bicubic_kernel(factor).astype(np.float64)
    pad_before = 3 * factor // 2
    pad_after = 3 * factor - pad_before
    if max(pad_before, pad_after) >= size:
        raise ValueError(
            f"an image side of {size} px is too small for a x{factor} downscale "
            f"(reflect padding of {pad_after} px needs more than that)"
        )
    outputs = (size + 3 * factor - len(taps)) // factor + 1
    index = np.arange(outputs)[:, None] * factor + np.arange(len(taps))[None, :] - pad_before
    index = np.abs(index)  # reflected at the first sample
    index = np.where(index >= size, 2 * (size - 1) - index, index)  # and at the last
    matrix = np.zeros((outputs, size), np.float64)
    np.add.at(matrix, (np.repeat(np.arange(outputs), len(taps)), index.ravel()), np.tile(taps, outputs))
    matrix = matrix.astype(np.float32)
    matrix.setflags(write=False)  # cached and shared
    return matrix


class BicubicDownsample(nn.Layer):
    """Downscale NCHW images by an integer ``factor`` exactly as PULSE does.

    PULSE applies the kernel separably (rows, then columns) to every channel on its own, with
    stride ``factor`` and reflect padding. Both passes are linear maps of one axis, so each is a
    matrix (``downscale_matrix``) and the downscale is two matmuls: far cheaper than padding and
    convolving a 1024 px image, forward and backward. Differentiable; runs in dygraph, under
    ``paddle.jit.to_static`` and in ONNX.

    ``side``: the image side the layer will mostly be given, if known: that matrix is then a
    buffer, saved with a graph exported from the layer (which then has parameters to save).
    """

    def __init__(self, factor: int, side: int | None = None) -> None:
        super().__init__()
        if int(factor) != factor or factor < 1:
            raise ValueError(f"the downscale factor must be a positive integer, got {factor!r}")
        self.factor = int(factor)
        self.side = side
        if side is not None:
            self.register_buffer("matrix", paddle.to_tensor(downscale_matrix(side, self.factor)))

    def _matrix(self, size: int) -> paddle.Tensor:
        if size == self.side:
            return self.matrix
        # otherwise made on each call, from a cached array: one layer serves eager and to_static code
        return paddle.to_tensor(downscale_matrix(size, self.factor))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """``x`` [B, C, H, W] → [B, C, H / factor, W / factor]."""
        channels, height, width = x.shape[1:]
        # Planes [B*C, H, W]: Paddle Inference's oneDNN matmul misreads a 4-D tensor that a oneDNN
        # conv left in its blocked layout, and a reshape gives it the plain layout.
        planes = x.reshape([-1, height, width])
        width_matrix = self._matrix(width)
        height_matrix = width_matrix if height == width else self._matrix(height)  # one, if square
        cols = paddle.matmul(planes, width_matrix, transpose_y=True)  # [B*C, H, W / factor]
        rows = paddle.matmul(height_matrix, cols)  # [B*C, H / factor, W / factor]
        return rows.reshape([-1, channels, *rows.shape[1:]])


def downscale_array(images: np.ndarray, factor: int) -> np.ndarray:
    """PULSE's bicubic downscale of [..., H, W] arrays in NumPy, float64 and unclipped: the same
    matrices as ``BicubicDownsample``, for code that works on arrays after a search."""
    height, width = images.shape[-2:]
    rows = downscale_matrix(height, factor).astype(np.float64)
    cols = rows if width == height else downscale_matrix(width, factor).astype(np.float64)
    return rows @ np.asarray(images, np.float64) @ cols.T


def downscale_images(images: np.ndarray, factor: int) -> np.ndarray:
    """PULSE's bicubic downscale of [B, 3, R, R] images in [0, 1], as the search compares them;
    float32, clipped to [0, 1] (for pictures)."""
    return np.clip(downscale_array(images, factor), 0, 1).astype(np.float32)
