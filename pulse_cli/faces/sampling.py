"""How MTCNN's stages sample the photo: pyramid levels and box patches, resized with Pillow.

Pixels here are float32 [H, W, C] arrays of 0..255 values. Shrinking uses Pillow's box filter (area
averaging, as OpenCV's ``INTER_AREA`` in the reference implementation), enlarging its bilinear one.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pulse_cli.faces.planes import from_planes, to_planes


def _method(source: tuple[int, int], target: tuple[int, int]) -> Image.Resampling:
    """Area averaging when (width, height) ``source`` shrinks to ``target``, else bilinear."""
    shrinking = target[0] <= source[0] and target[1] <= source[1]
    return Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR


class Sampler:
    """One photo's pixels as Pillow planes, made once and sampled by every stage of the cascade."""

    def __init__(self, pixels: np.ndarray) -> None:
        self.pixels = pixels
        self.planes = to_planes(pixels)
        self.height, self.width = pixels.shape[:2]

    def level(self, width: int, height: int) -> np.ndarray:
        """The whole photo resized to [height, width, C]."""
        method = _method((self.width, self.height), (width, height))
        return from_planes([plane.resize((width, height), method) for plane in self.planes])

    def patches(self, boxes: np.ndarray, size: int) -> np.ndarray:
        """``size``×``size`` patches [N, size, size, C] over whole-pixel ``boxes`` [N, ≥4] (``x1, y1,
        x2, y2`` inclusive), zero (black) where a box leaves the photo. As the reference, a box's
        pixels start one pixel up and left of its corner (MATLAB's 1-based indices)."""
        patches = [self._patch(*box, size) for box in boxes[:, :4].astype(np.int64).tolist()]
        return np.stack(patches) if patches else np.zeros((0, size, size, self.pixels.shape[2]), np.float32)

    def _patch(self, x1: int, y1: int, x2: int, y2: int, size: int) -> np.ndarray:
        left, top, right, bottom = x1 - 1, y1 - 1, x2, y2
        method = _method((right - left, bottom - top), (size, size))
        if left >= 0 and top >= 0 and right <= self.width and bottom <= self.height:
            box = (left, top, right, bottom)
            return from_planes([plane.resize((size, size), method, box=box) for plane in self.planes])
        patch = np.zeros((bottom - top, right - left, self.pixels.shape[2]), np.float32)
        inside_top, inside_bottom = max(top, 0), min(bottom, self.height)
        inside_left, inside_right = max(left, 0), min(right, self.width)
        if inside_top < inside_bottom and inside_left < inside_right:
            patch[inside_top - top : inside_bottom - top, inside_left - left : inside_right - left] = (
                self.pixels[inside_top:inside_bottom, inside_left:inside_right]
            )
        return from_planes([plane.resize((size, size), method) for plane in to_planes(patch)])
