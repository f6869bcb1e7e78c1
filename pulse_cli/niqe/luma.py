"""The one channel NIQE looks at: an image (path, PIL image or array) turned into luma as a variant wants.

A file or a PIL image is decoded to RGB first (a gray file thus becomes R = G = B, as an image
library that reads every file as colour sees it); an H×W array is taken as the luma itself.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from pulse_cli.images import InputImageError, decode_image
from pulse_cli.niqe.errors import NiqeError, NiqeTooSmall
from pulse_cli.niqe.variants import BLOCK, Variant
from pulse_cli.niqe.workspace import workspace

ImageLike = str | os.PathLike | Image.Image | np.ndarray

YCBCR_Y = np.array([65481.0, 128553.0, 24966.0])
"""MATLAB ``rgb2ycbcr``: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, here scaled by 1000 to integers."""
YCBCR_DIVISOR = 255000.0
PIL_L = np.array([19595.0, 38470.0, 7471.0])
"""PIL's ``convert('L')`` in its own fixed point: L = (19595 R + 38470 G + 7471 B + 2**15) >> 16."""
PIL_DIVISOR = 65536.0


def image_name(image: ImageLike) -> str:
    """How messages name the image: its path, or what kind of object it is."""
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    if isinstance(image, Image.Image):
        return getattr(image, "filename", "") or f"PIL image {image.size[0]}x{image.size[1]}"
    if isinstance(image, np.ndarray):
        return f"array {'x'.join(map(str, image.shape))}"
    return type(image).__name__


def to_array(image: ImageLike) -> np.ndarray:
    """The image as an H×W or H×W×3 array of values in [0, 255] (uint8 or float)."""
    name = image_name(image)
    if isinstance(image, (str, os.PathLike)):
        try:  # any format Pillow reads, with the inputs' guard against huge images and bombs
            return decode_image(image, lambda opened: np.asarray(opened.convert("RGB")), formats=None)
        except InputImageError as error:
            raise NiqeError(str(error)) from None
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise NiqeError(f"{name}: expected a path, a PIL image or a NumPy array")
    array = image
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise NiqeError(f"{name}: expected an HxW or HxWx3 array, got shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
            raise NiqeError(f"{name}: expected uint8 or float values, got {array.dtype}")
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise NiqeError(f"{name}: the array holds NaN or infinite values")
    return array


def to_luma(array: np.ndarray, variant: Variant) -> np.ndarray:
    """The variant's luma of an H×W×3 array as float32 (a workspace array); an H×W array passes as is.

    ``ycbcr`` rounds halves to even (NumPy's rounding, which BasicSR applies); the weighted sum of
    8-bit values is formed exactly, so that exact halves stay exact.
    """
    ws = workspace()
    out = ws.get("luma", array.shape[:2])
    if array.ndim == 2:
        np.copyto(out, array, casting="unsafe")
        return out
    if variant.luma not in ("ycbcr", "pil"):
        raise ValueError(f"unknown luma {variant.luma!r}")
    weights, divisor = (YCBCR_Y, YCBCR_DIVISOR) if variant.luma == "ycbcr" else (PIL_L, PIL_DIVISOR)
    acc = ws.get("luma_acc", out.shape, np.float64)
    if array.dtype == np.uint8:
        total = ws.get("luma_total", out.shape, np.int32)
        term = ws.get("luma_term", out.shape, np.int32)
        np.multiply(array[..., 0], np.int32(weights[0]), out=total, dtype=np.int32)
        for channel in (1, 2):
            np.multiply(array[..., channel], np.int32(weights[channel]), out=term, dtype=np.int32)
            total += term
        np.copyto(acc, total)
    else:
        np.dot(array, weights, out=acc)
    if variant.luma == "ycbcr":
        acc /= divisor
        acc += 16
        np.rint(acc, out=acc)
    else:
        acc += divisor / 2
        acc /= divisor
        np.floor(acc, out=acc)
    np.copyto(out, acc, casting="same_kind")
    return out


def block_grid(shape: tuple[int, ...], name: str) -> tuple[int, int]:
    """How many whole 96×96 blocks fit down and across; a NiqeError when fewer than two do."""
    height, width = shape[:2]
    rows, cols = height // BLOCK, width // BLOCK
    if rows * cols < 2:
        raise NiqeTooSmall(
            f"{name}: {width}x{height} px holds {rows * cols} whole {BLOCK}x{BLOCK} block(s); NIQE needs at "
            f"least 2 (at least {2 * BLOCK} px on one side and {BLOCK} on the other)",
            width,
            height,
        )
    return rows, cols
