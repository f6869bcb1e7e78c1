"""Float images as Pillow ``F`` planes, so resampling keeps full precision (no 8-bit rounding)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def to_planes(pixels: np.ndarray) -> list[Image.Image]:
    """Float [H, W, C] pixels as one Pillow ``F`` image per channel."""
    return [
        Image.fromarray(np.ascontiguousarray(pixels[:, :, c], np.float32), mode="F")
        for c in range(pixels.shape[2])
    ]


def from_planes(planes: list[Image.Image]) -> np.ndarray:
    """Pillow ``F`` images, one per channel, as float32 [H, W, C] pixels."""
    return np.stack([np.asarray(plane, np.float32) for plane in planes], axis=2)


def resized(pixels: np.ndarray, size: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    """Float [H, W, C] pixels resized to ``size`` (width, height) with Pillow's ``method``."""
    return from_planes([plane.resize(size, method) for plane in to_planes(pixels)])
