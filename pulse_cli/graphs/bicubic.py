"""PULSE's bicubic downscaler: how a generated image is compared with the low-resolution input."""

from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn


def bicubic_kernel(factor: int, a: float = -0.5) -> np.ndarray:
    """PULSE's normalized 1-D ``BicubicDownSample`` kernel: ``4 * factor`` taps of Keys' cubic with ``a``."""
    size = 4 * factor
    x = np.abs((np.arange(size, dtype=np.float64) - size // 2 + 0.5) / factor)
    near = (a + 2) * x**3 - (a + 3) * x**2 + 1
    far = a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    k = np.where(x <= 1, near, np.where(x < 2, far, 0.0))
    return (k / k.sum()).astype(np.float32)


class BicubicDownsample(nn.Layer):
    """Downscale NCHW images by an integer ``factor`` exactly as PULSE does.

    The kernel is applied separably (rows, then columns) to every channel on its own, with
    stride ``factor`` and reflect padding of ``3 * factor`` split as PULSE splits it.
    Differentiable; runs in dygraph, under ``paddle.jit.to_static`` and in ONNX.
    """

    def __init__(self, factor: int) -> None:
        super().__init__()
        if int(factor) != factor or factor < 1:
            raise ValueError(f"the downscale factor must be a positive integer, got {factor!r}")
        self.factor = int(factor)
        kernel = paddle.to_tensor(bicubic_kernel(self.factor))
        size = 4 * self.factor
        self.register_buffer("kernel_h", kernel.reshape([1, 1, size, 1]), persistable=False)
        self.register_buffer("kernel_w", kernel.reshape([1, 1, 1, size]), persistable=False)
        pad = 3 * self.factor
        self.pad_before = pad // 2
        self.pad_after = pad - pad // 2

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """``x`` [B, C, H, W] → [B, C, H / factor, W / factor]."""
        channels = x.shape[1]
        rows = F.pad(x, [0, 0, self.pad_before, self.pad_after], mode="reflect")
        rows = F.conv2d(
            rows, self.kernel_h.expand([channels, 1, -1, 1]), stride=[self.factor, 1], groups=channels
        )
        cols = F.pad(rows, [self.pad_before, self.pad_after, 0, 0], mode="reflect")
        return F.conv2d(
            cols, self.kernel_w.expand([channels, 1, 1, -1]), stride=[1, self.factor], groups=channels
        )


def downscale_images(images: np.ndarray, factor: int) -> np.ndarray:
    """PULSE's bicubic downscale of [B, 3, R, R] images in [0, 1], as the search compares them,
    without gradients; the result is clipped to [0, 1] (for pictures)."""
    with paddle.no_grad():
        small = BicubicDownsample(factor)(paddle.to_tensor(np.asarray(images, np.float32)))
    return np.clip(small.numpy(), 0, 1)
