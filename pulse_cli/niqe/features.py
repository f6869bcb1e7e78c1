"""NIQE's per-block natural-scene features in NumPy, vectorized over blocks.

Precision follows the reference implementations: images, local means and variances and MSCN
coefficients are stored in float32; filters accumulate in float64 (``scipy.ndimage``; the
``float32`` window also stores its first pass in float32). Storing the local mean in float32 is
what makes a flat patch's MSCN exactly 0, which matters: such coefficients count on neither
AGGD side in the ``matlab`` variant. Block sums are float64.

The pixel work runs one band of blocks at a time (one block high, the image wide), with every
block of a band handled by the same array operations; bands are shared out between a few
threads, and scratch arrays come from each thread's workspace, reused across bands and calls.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
from scipy import ndimage

from pulse_cli.niqe.variants import (
    BLOCK,
    FEATURES_PER_SCALE,
    MSCN_C,
    SHIFTS,
    Variant,
    alpha_grid,
    gaussian_taps,
    imresize_half_taps,
)
from pulse_cli.niqe.workspace import workspace

MOMENTS = 6
"""Per block and map: sample count, then the sums of the QUANTITIES."""

QUANTITIES = ("negative", "positive", "negative_square", "square", "absolute")
"""Per-pixel quantities whose block sums NIQE needs: the indicators of x < 0 and of x > 0 (x >= 0
where the variant says so), x² where x < 0, x², |x|."""

MAPS = 1 + len(SHIFTS)
"""The MSCN coefficients and their products with the four shifted copies."""

NDIMAGE_MODE = {"nearest": "nearest", "zero": "constant"}

THREADS = max(1, min(4, os.cpu_count() or 1))
"""Worker threads for the bands of one scale."""


def block_features(y: np.ndarray, variant: Variant) -> np.ndarray:
    """The [blocks, 36] features of a float32 luma image already cropped to whole 96×96 blocks.

    Columns 0-17 come from the image, 18-35 from its half-size version; rows are blocks in
    row-major order.
    """
    rows, cols = y.shape[0] // BLOCK, y.shape[1] // BLOCK
    first = aggd_features(scale_moments(y, BLOCK, variant), variant)
    second = aggd_features(scale_moments(downscale(y, variant), BLOCK // 2, variant), variant)
    return np.concatenate([first, second], axis=-1).reshape(rows * cols, 2 * FEATURES_PER_SCALE)


def downscale(y: np.ndarray, variant: Variant) -> np.ndarray:
    """The second NIQE scale (float32, a workspace array): a 2×2 mean, or ``255 * imresize(y / 255, 0.5)``
    with MATLAB's ``imresize`` (in float32 as BasicSR computes it, each pass accumulated in float64)."""
    ws = workspace()
    height, width = y.shape
    out = ws.get("half", (height // 2, width // 2))
    if variant.downscale == "box":
        rows = ws.get("box_rows", (height // 2, width))
        np.add(y[0::2], y[1::2], out=rows)
        rows *= 0.5
        np.add(rows[:, 0::2], rows[:, 1::2], out=out)
        out *= 0.5
    elif variant.downscale == "imresize":
        unit = ws.get("resize_unit", y.shape)
        np.divide(y, np.float32(255), out=unit)
        tall = _imresize_half(unit, ws.get("resize_rows", (height // 2, width)), axis=0)
        _imresize_half(tall, out, axis=1)
        out *= np.float32(255)
    else:
        raise ValueError(f"unknown downscale {variant.downscale!r}")
    return out


def _imresize_half(y: np.ndarray, out: np.ndarray, axis: int) -> np.ndarray:
    """MATLAB ``imresize`` to half along ``axis`` (even length) into ``out``: 8 taps, symmetric edges."""
    ws = workspace()
    taps = imresize_half_taps()
    length = y.shape[axis]
    shape = list(y.shape)
    shape[axis] += 6
    padded = np.moveaxis(ws.get(f"resize_padded_{axis}", tuple(shape)), axis, 0)
    source = np.moveaxis(y, axis, 0)
    padded[3 : 3 + length] = source
    padded[:3] = source[2::-1]
    padded[3 + length :] = source[:-4:-1]
    acc = np.moveaxis(ws.get(f"resize_acc_{axis}", out.shape, np.float64), axis, 0)
    pair = np.moveaxis(ws.get(f"resize_pair_{axis}", out.shape, np.float64), axis, 0)
    acc[...] = 0.0
    for k in range(4):
        np.add(padded[k : k + length : 2], padded[7 - k : 7 - k + length : 2], out=pair, dtype=np.float64)
        pair *= taps[k]
        acc += pair
    np.moveaxis(out, axis, 0)[...] = acc
    return out


def scale_moments(y: np.ndarray, block: int, variant: Variant) -> np.ndarray:
    """The [rows, cols, MAPS, MOMENTS] block moments of one float32 scale image.

    The bands are shared out between worker threads (NumPy and ``scipy.ndimage`` release the GIL).
    """
    rows, cols = y.shape[0] // block, y.shape[1] // block
    moments = np.empty((rows, cols, MAPS, MOMENTS))
    shares = [share for share in np.array_split(np.arange(rows), THREADS) if len(share)]
    list(_pool().map(lambda share: _bands_moments(y, block, variant, share, moments), shares))
    return moments


def _bands_moments(
    y: np.ndarray, block: int, variant: Variant, rows: np.ndarray, moments: np.ndarray
) -> None:
    """Fill ``moments[row]`` for the bands ``rows``, with this thread's workspace."""
    ws = workspace()
    taps = gaussian_taps(variant.window)
    half = len(taps) // 2
    mode = NDIMAGE_MODE[variant.padding]
    height, width = y.shape
    stack = ws.get("stack", (2, block + 2 * half, width))
    tall = ws.get("tall", stack.shape, np.float32 if variant.window == "float32" else np.float64)
    local = ws.get("local", stack.shape)
    sigma = ws.get("sigma", (block, width))
    mscn = ws.get("mscn", (block, width))
    for row in rows:
        top, bottom = max(row * block - half, 0), min((row + 1) * block + half, height)
        band, skip = slice(0, bottom - top), row * block - top
        np.copyto(stack[0, band], y[top:bottom])
        np.multiply(y[top:bottom], y[top:bottom], out=stack[1, band])
        ndimage.correlate1d(stack[:, band], taps, axis=1, output=tall[:, band], mode=mode)
        ndimage.correlate1d(tall[:, band], taps, axis=2, output=local[:, band], mode=mode)
        mu, second = local[0, skip : skip + block], local[1, skip : skip + block]
        np.multiply(mu, mu, out=sigma)
        np.subtract(second, sigma, out=sigma)
        np.abs(sigma, out=sigma)
        np.sqrt(sigma, out=sigma)
        sigma += MSCN_C
        np.subtract(y[row * block : (row + 1) * block], mu, out=mscn)
        np.divide(mscn, sigma, out=mscn)
        moments[row] = band_moments(mscn, block, variant)


@cache
def _pool() -> ThreadPoolExecutor:
    """The worker threads that share out the bands."""
    return ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="niqe")


def band_moments(mscn: np.ndarray, block: int, variant: Variant) -> np.ndarray:
    """[cols, MAPS, MOMENTS] for a band of MSCN blocks side by side; shifts are circular within a block.

    The quantities are float32 and their block sums float64, so that any summation order gives
    the same sums to float64 rounding and the alpha look-up cannot tip between backends.
    """
    ws = workspace()
    cols = mscn.shape[1] // block
    blocks = mscn.reshape(block, cols, block)
    maps = ws.get("maps", (MAPS, block, cols, block))
    maps[0] = blocks
    for i, (dy, dx) in enumerate(SHIFTS, start=1):
        _shifted_product(blocks, dy, dx, maps[i])
    quantities = ws.get("quantities", (len(QUANTITIES), *maps.shape))
    negative, positive, negative_square, square, absolute = quantities
    np.less(maps, 0, out=negative, casting="unsafe")
    right_side = np.greater_equal if variant.right_includes_zero else np.greater
    right_side(maps, 0, out=positive, casting="unsafe")
    np.multiply(maps, maps, out=square)
    np.multiply(square, negative, out=negative_square)
    np.abs(maps, out=absolute)
    sums = np.einsum("qmico->qmc", quantities, dtype=np.float64)
    out = np.empty((MAPS, cols, MOMENTS))
    out[..., 0] = block * block
    out[..., 1:] = np.moveaxis(sums, 0, -1)
    return out.transpose(1, 0, 2)


def _shifted_product(blocks: np.ndarray, dy: int, dx: int, out: np.ndarray) -> None:
    """``out = blocks * np.roll(blocks, (dy, dx), axis=(0, 2))`` for shifts of -1, 0 or 1, without copies."""
    size = blocks.shape[0]
    for here_y, there_y in _roll_slices(size, dy):
        for here_x, there_x in _roll_slices(size, dx):
            np.multiply(blocks[here_y, :, here_x], blocks[there_y, :, there_x], out=out[here_y, :, here_x])


def _roll_slices(size: int, shift: int) -> list[tuple[slice, slice]]:
    """(position, position ``shift`` back, circularly) slice pairs along one axis of length ``size``."""
    if shift == 0:
        return [(slice(0, size), slice(0, size))]
    if shift == 1:
        return [(slice(1, size), slice(0, size - 1)), (slice(0, 1), slice(size - 1, size))]
    return [(slice(0, size - 1), slice(1, size)), (slice(size - 1, size), slice(0, 1))]


def aggd_features(moments: np.ndarray, variant: Variant) -> np.ndarray:
    """The 18 features per block from its [..., MAPS, MOMENTS] moments: [..., 18].

    For the MSCN map: alpha and the mean of beta_l, beta_r; for each shifted product: alpha,
    the AGGD mean, beta_l and beta_r (beta_l again for the diagonals in ``paddle-pulse``).
    """
    alpha, mean, beta_l, beta_r = aggd_fit(moments, variant)
    if variant.diagonal_repeats_left:
        beta_r = np.concatenate([beta_r[..., :3], beta_l[..., 3:]], axis=-1)
    mscn = np.stack([alpha[..., 0], (beta_l[..., 0] + beta_r[..., 0]) / 2], axis=-1)
    products = np.stack([alpha[..., 1:], mean[..., 1:], beta_l[..., 1:], beta_r[..., 1:]], axis=-1)
    return np.concatenate([mscn, products.reshape(*products.shape[:-2], -1)], axis=-1)


def aggd_fit(moments: np.ndarray, variant: Variant) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching AGGD fit: alpha, mean, beta_l and beta_r from [..., MOMENTS] sums."""
    count, negatives, positives, left_square, square, absolute = np.moveaxis(moments, -1, 0)
    right_square = square - left_square
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma_l = np.sqrt(left_square / negatives)
        sigma_r = np.sqrt(right_square / positives)
        r_hat = (absolute / count) * (absolute / count) / (square / count)
        if variant.empty_side_is_zero:
            sigma_l = np.where(negatives > 0, sigma_l, 0.0)
            sigma_r = np.where(positives > 0, sigma_r, 0.0)
            r_hat = np.where(square != 0, r_hat, np.inf)
        gamma_hat = np.where(sigma_r != 0, sigma_l / sigma_r, np.inf)
        gamma2 = gamma_hat * gamma_hat
        rho_hat = r_hat * (gamma2 * gamma_hat + 1) * (gamma_hat + 1) / ((gamma2 + 1) * (gamma2 + 1))
    grid = alpha_grid(variant.alpha_max)
    index = nearest_index(grid.rho, rho_hat)
    beta_l = grid.beta_scale[index] * sigma_l
    beta_r = grid.beta_scale[index] * sigma_r
    return grid.alpha[index], (beta_r - beta_l) * grid.mean_scale[index], beta_l, beta_r


def nearest_index(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each value, ``argmin((table - value)**2)`` over an increasing table, as the references find it.

    Ties go to the lower index; a value that is not finite gets index 0, as ``argmin`` over
    NaN or infinite distances returns.
    """
    finite = np.isfinite(values)
    safe = np.where(finite, values, table[0])
    upper = np.clip(np.searchsorted(table, safe), 1, len(table) - 1)
    lower = upper - 1
    above, below = table[upper] - safe, table[lower] - safe
    pick_upper = above * above < below * below
    return np.where(finite, np.where(pick_upper, upper, lower), 0)
