"""NIQE's per-pixel and per-block work as a Paddle layer, for export to ONNX.

``NiqeFeatures(variant, channels)`` maps an image cropped to whole 96×96 blocks, [H, W, channels]
float64 in [0, 255], to its [blocks, 36] float64 features, computing what
``pulse_cli.niqe.features`` computes in NumPy, in the same precision: luma, MSCN coefficients at
both scales (window sums in float64, stored in float32), the second scale, the block moments and
the AGGD fit with its alpha look-up (an argmin over the grid). Only the final Mahalanobis step is
left to NumPy. H and W may vary between calls (multiples of 96).

Every operation here has an ONNX counterpart that onnxruntime runs for the dtype used: the
window sums are shifted slices rather than convolutions (onnxruntime has no float64 Conv), and
rounding is spelled out (ONNX rounds halves to even, Paddle away from zero), and scalar factors
that are not powers of two are constant tensors (see ``_constant``). The helpers hold
no data-dependent control flow and are traced as written (``not_to_static``).
"""

from __future__ import annotations

import math

import numpy as np
import paddle
from paddle import nn

from pulse_cli.niqe.luma import PIL_DIVISOR, PIL_L, YCBCR_DIVISOR, YCBCR_Y
from pulse_cli.niqe.variants import (
    BLOCK,
    MSCN_C,
    SHIFTS,
    Variant,
    alpha_grid,
    gaussian_taps,
    imresize_half_taps,
)


class NiqeFeatures(nn.Layer):
    """The [blocks, 36] NIQE features of a cropped [H, W, channels] float64 image (channels 1 or 3)."""

    def __init__(self, variant: Variant, channels: int) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"NiqeFeatures takes 1 or 3 channels, got {channels}")
        self.variant = variant
        self.channels = channels
        self.taps = [float(t) for t in gaussian_taps(variant.window)]
        self.resize_taps = [float(t) for t in imresize_half_taps()]
        grid = alpha_grid(variant.alpha_max)
        for name in ("alpha", "rho", "beta_scale", "mean_scale"):
            table = paddle.to_tensor(np.ascontiguousarray(getattr(grid, name)), dtype="float64")
            self.register_buffer(name, table, persistable=True)
        self.stride = math.isqrt(len(grid.rho) - 1) + 1
        self.register_buffer("coarse", paddle.to_tensor(grid.rho[:: self.stride].copy()), persistable=True)

    def forward(self, image: paddle.Tensor) -> paddle.Tensor:
        y = self.luma(image)
        first = self.scale_features(y, BLOCK)
        second = self.scale_features(self.downscale(y), BLOCK // 2)
        return paddle.concat([first, second], axis=1)

    @paddle.jit.not_to_static
    def luma(self, image: paddle.Tensor) -> paddle.Tensor:
        """[H, W] float32 luma: as is for one channel, else the variant's weighted sum, rounded."""
        if self.channels == 1:
            return image[:, :, 0].astype("float32")
        if self.variant.luma == "ycbcr":
            weights, divisor = YCBCR_Y, YCBCR_DIVISOR
        else:
            weights, divisor = PIL_L, PIL_DIVISOR
        total = image[:, :, 0] * _constant(weights[0], "float64")
        total = total + image[:, :, 1] * _constant(weights[1], "float64")
        total = total + image[:, :, 2] * _constant(weights[2], "float64")
        if self.variant.luma == "ycbcr":
            value = _round_half_even(total / _constant(divisor, "float64") + 16.0)
        else:
            value = paddle.floor((total + divisor / 2) / _constant(divisor, "float64"))
        return value.astype("float32")

    @paddle.jit.not_to_static
    def downscale(self, y: paddle.Tensor) -> paddle.Tensor:
        """The second scale, float32: a 2×2 mean or ``255 * imresize(y / 255, 0.5)``."""
        if self.variant.downscale == "box":
            rows = (y[0::2] + y[1::2]) * 0.5
            return (rows[:, 0::2] + rows[:, 1::2]) * 0.5
        unit = y / _constant(255.0, "float32")
        half = self._imresize_half(unit)
        half = self._imresize_half(half.transpose([1, 0])).transpose([1, 0])
        return half * _constant(255.0, "float32")

    @paddle.jit.not_to_static
    def _imresize_half(self, y: paddle.Tensor) -> paddle.Tensor:
        """MATLAB ``imresize`` to half along axis 0: 8 taps, symmetric edges, float64 sums kept as float32."""
        before = [y[2:3], y[1:2], y[0:1]]
        after = [y[-1:], y[-2:-1], y[-3:-2]]
        padded = paddle.concat([*before, y, *after], axis=0)
        padded = padded.astype("float64")
        total = None
        for k in range(4):
            pair = _rows(padded, k, 6, 2) + _rows(padded, 7 - k, 6, 2)
            term = pair * _constant(self.resize_taps[k], "float64")
            total = term if total is None else total + term
        return total.astype("float32")

    @paddle.jit.not_to_static
    def scale_features(self, y: paddle.Tensor, block: int) -> paddle.Tensor:
        """[blocks, 18] features of one float32 scale image."""
        return self.aggd_features(self.block_moments(self.mscn(y), block), block)

    @paddle.jit.not_to_static
    def mscn(self, y: paddle.Tensor) -> paddle.Tensor:
        """Mean-subtracted contrast-normalized coefficients, float32, as ``scipy.ndimage`` computes them."""
        stack = paddle.stack([y, y * y]).unsqueeze(0)
        half = len(self.taps) // 2
        padded = _pad(_pad(stack, half, 2, self.variant.padding), half, 3, self.variant.padding)
        tall = self._window(padded.astype("float64"), axis=2)
        if self.variant.window == "float32":
            tall = tall.astype("float32").astype("float64")
        local = self._window(tall, axis=3).astype("float32")[0]
        mu, second = local[0], local[1]
        sigma = paddle.sqrt(paddle.abs(second - mu * mu)) + MSCN_C
        return (y - mu) / sigma

    @paddle.jit.not_to_static
    def _window(self, x: paddle.Tensor, axis: int) -> paddle.Tensor:
        """The 7-tap window along ``axis`` of a padded [1, 2, h, w] tensor, valid part, in ndimage's order."""
        half = len(self.taps) // 2
        span = 2 * half
        total = _along(x, axis, half, span) * _constant(self.taps[half], "float64")
        for j in range(half, 0, -1):
            total = total + (_along(x, axis, half - j, span) + _along(x, axis, half + j, span)) * _constant(
                self.taps[half - j], "float64"
            )
        return total

    @paddle.jit.not_to_static
    def block_moments(self, mscn: paddle.Tensor, block: int) -> paddle.Tensor:
        """[5 quantities, 5 maps, rows, cols] float64 block sums (see ``features.QUANTITIES``).

        As in NumPy the quantities are float32 and their sums float64; the 0/1 counts are summed
        in float32, which is exact below 2**24.
        """
        cols = paddle.shape(mscn)[1] // block
        blocks = mscn.reshape([-1, block, cols, block])
        maps = [blocks] + [blocks * paddle.roll(blocks, shifts=[dy, dx], axis=[1, 3]) for dy, dx in SHIFTS]
        maps = paddle.stack(maps)
        square = maps * maps
        negative = (maps < 0).astype("float32")
        positive = ((maps >= 0) if self.variant.right_includes_zero else (maps > 0)).astype("float32")
        counts = paddle.stack([negative, positive]).sum(axis=[3, 5]).astype("float64")
        values = paddle.stack([square * negative, square, paddle.abs(maps)]).astype("float64")
        return paddle.concat([counts, values.sum(axis=[3, 5])])

    @paddle.jit.not_to_static
    def aggd_features(self, sums: paddle.Tensor, block: int) -> paddle.Tensor:
        """[blocks, 18] features from [5 quantities, 5 maps, rows, cols] sums (``features.aggd_features``)."""
        negatives, positives, left_square, square, absolute = (
            sums[i].reshape([len(SHIFTS) + 1, -1]) for i in range(5)
        )
        count = _constant(block * block, "float64")
        inf = _filled(float("inf"), square)
        sigma_l = paddle.sqrt(left_square / negatives)
        sigma_r = paddle.sqrt((square - left_square) / positives)
        r_hat = (absolute / count) * (absolute / count) / (square / count)
        if self.variant.empty_side_is_zero:
            zero = _filled(0.0, square)
            sigma_l = paddle.where(negatives > 0, sigma_l, zero)
            sigma_r = paddle.where(positives > 0, sigma_r, zero)
            r_hat = paddle.where(square != 0, r_hat, inf)
        gamma_hat = paddle.where(sigma_r != 0, sigma_l / sigma_r, inf)
        gamma2 = gamma_hat * gamma_hat
        rho_hat = r_hat * (gamma2 * gamma_hat + 1) * (gamma_hat + 1) / ((gamma2 + 1) * (gamma2 + 1))
        index = self.nearest_index(rho_hat.reshape([-1]))
        alpha = paddle.gather(self.alpha, index).reshape(rho_hat.shape).transpose([1, 0])
        scale = paddle.gather(self.beta_scale, index).reshape(rho_hat.shape)
        beta_l = (scale * sigma_l).transpose([1, 0])
        beta_r = (scale * sigma_r).transpose([1, 0])
        mean = (beta_r - beta_l) * paddle.gather(self.mean_scale, index).reshape(rho_hat.shape).transpose(
            [1, 0]
        )
        right = beta_r
        if self.variant.diagonal_repeats_left:
            right = paddle.concat([beta_r[:, :3], beta_l[:, 3:]], axis=1)
        columns = [alpha[:, 0], (beta_l[:, 0] + right[:, 0]) / 2]
        for i in range(1, len(SHIFTS) + 1):
            columns += [alpha[:, i], mean[:, i], beta_l[:, i], right[:, i]]
        return paddle.stack(columns, axis=1)

    @paddle.jit.not_to_static
    def nearest_index(self, values: paddle.Tensor) -> paddle.Tensor:
        """``argmin((rho - value)**2)`` over the grid for each value (the first on a tie); 0 for a
        value that is not finite.

        Coarse to fine: every ``stride``-th entry locates the segment that holds the entries just
        below and just above the value (rho increases), then the argmin runs over that segment
        and the entry after it: about 2·sqrt(n) comparisons per value instead of n.
        """
        stride = self.stride
        safe = paddle.where(paddle.isfinite(values), values, _filled(-1.0, values))
        below = (self.coarse.unsqueeze(0) <= safe.unsqueeze(1)).astype("int64").sum(axis=1)
        start = paddle.clip(below - 1, min=0) * stride
        candidates = start.unsqueeze(1) + paddle.arange(stride + 1, dtype="int64").unsqueeze(0)
        candidates = paddle.clip(candidates, max=self.rho.shape[0] - 1)
        distance = paddle.gather(self.rho, candidates.reshape([-1])).reshape([-1, stride + 1])
        distance = distance - safe.unsqueeze(1)
        return start + paddle.argmin(distance * distance, axis=1)


def _constant(value: float, dtype: str) -> paddle.Tensor:
    """A scalar tensor. Multiplying by a Python float would become a ``scale`` op whose factor is
    stored as float32 in the exported graph; a constant tensor keeps its dtype's precision."""
    return paddle.full([], value, dtype)


def _pad(x: paddle.Tensor, width: int, axis: int, padding: str) -> paddle.Tensor:
    """``x`` extended by ``width`` samples on both sides of ``axis``: edge copies or zeros.

    Built from slices and concatenation: onnxruntime fills a constant ``Pad`` exported by
    paddle2onnx 2.1 with garbage (denormals, or worse) instead of zeros.
    """
    if padding == "nearest":
        before = [_slice(x, axis, 0, 1)] * width
        after = [_slice(x, axis, -1, None)] * width
    else:
        before = after = [_slice(x, axis, 0, width) * 0.0]
    return paddle.concat([*before, x, *after], axis=axis)


def _slice(x: paddle.Tensor, axis: int, start: int, stop: int | None) -> paddle.Tensor:
    """``x[..., start:stop, ...]`` along ``axis``."""
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _filled(value: float, like: paddle.Tensor) -> paddle.Tensor:
    """A tensor of ``like``'s shape and dtype holding ``value`` (``full_like`` warns under to_static)."""
    return paddle.full(paddle.shape(like), value, like.dtype)


def _round_half_even(x: paddle.Tensor) -> paddle.Tensor:
    """Round to the nearest integer, halves to even (NumPy's and ONNX's rule), in Paddle and in ONNX alike."""
    up = paddle.floor(x + 0.5)
    tie = (up - x) == 0.5
    odd = paddle.floor(up * 0.5) * 2.0 != up
    return paddle.where(paddle.logical_and(tie, odd), up - 1.0, up)


def _rows(x: paddle.Tensor, start: int, spare: int, step: int = 1) -> paddle.Tensor:
    """``x[start : len - spare + start : step]`` along axis 0, for any length."""
    stop = start - spare
    return x[start : stop if stop < 0 else None : step]


def _along(x: paddle.Tensor, axis: int, start: int, spare: int) -> paddle.Tensor:
    """``x[..., start : len - spare + start, ...]`` along ``axis``, for any length."""
    stop = start - spare
    return _slice(x, axis, start, stop if stop < 0 else None)
