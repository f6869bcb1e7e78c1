"""How MTCNN's stages sample the photo: pyramid levels and box patches, resized with Pillow.

Images here are float32 [H, W, C] arrays of 0..255 values. Shrinking uses Pillow's box filter (area
averaging, as OpenCV's ``INTER_AREA`` in the reference implementation), enlarging its bilinear one.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pulse_cli.faces.planes import resized


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` [H, W, C] resized to [height, width, C] in float32: area averaging when it shrinks,
    bilinear when it grows."""
    shrinking = width <= image.shape[1] and height <= image.shape[0]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return resized(image, (width, height), method)


def crop_patches(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """``size``×``size`` patches [N, size, size, C] of ``image`` over whole-pixel ``boxes`` [N, ≥4]
    (``x1, y1, x2, y2`` inclusive), zero (black) where a box leaves the photo. As the reference,
    a box's pixels start one pixel up and left of its corner (MATLAB's 1-based indices)."""
    height, width = image.shape[:2]
    patches = []
    for x1, y1, x2, y2 in boxes[:, :4].astype(np.int64):
        patch = np.zeros((y2 - y1 + 1, x2 - x1 + 1, image.shape[2]), np.float32)
        top, bottom = max(y1 - 1, 0), min(y2, height)
        left, right = max(x1 - 1, 0), min(x2, width)
        if top < bottom and left < right:
            patch[top - (y1 - 1) : bottom - (y1 - 1), left - (x1 - 1) : right - (x1 - 1)] = image[
                top:bottom, left:right
            ]
        patches.append(resize(patch, size, size))
    return np.stack(patches) if patches else np.zeros((0, size, size, image.shape[2]), np.float32)
