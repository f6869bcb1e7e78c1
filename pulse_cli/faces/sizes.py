"""The input size a face of a photo is searched at: as large as the photo really holds it.

PULSE searched every face at 16×16, and so lost the person: a bicubic enlargement of a 16 px aligned
crop is another person for dlib on most real faces, of a 64 px one the same person (README,
"Faithful faces"). A face is searched at the largest size the model accepts, up to ``LARGEST``, that

- its FFHQ crop spans in the photo (a crop of fewer photo pixels would be an enlargement, whose
  pixels the photo never held), and
- still holds detail at that size: the crop differs from its own 2× bicubic down-and-up by at least
  ``DETAIL_FLOOR`` (RMS, pixel values in [0, 1]). A blurred or heavily compressed face holds less
  than its side says; searching it at a size it does not hold asks the generator for the blur.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pulse_cli.faces.align import align, ffhq_quad
from pulse_cli.faces.planes import resized
from pulse_cli.images import valid_sides

SMALLEST = 16  # PULSE's size: every face gets at least this
LARGEST = 64  # studied (README, "Faithful faces"); 128 asks for more than the search meets in time
DETAIL_FLOOR = 0.01  # sharp real faces measured 0.014-0.057 at 64 px, blurred 512 px crops 0.003-0.009 at 128


@dataclass(frozen=True)
class SizeChoice:
    """The input size chosen for one face and why (recorded in report.json)."""

    size: int
    reason: str


def detail(crop: np.ndarray) -> float:
    """RMS difference between a crop (float [3, n, n]) and its bicubic 2× downscale enlarged back."""
    side = crop.shape[-1]
    pixels = np.ascontiguousarray(crop.transpose(1, 2, 0), np.float32)
    half = resized(pixels, (side // 2, side // 2), Image.Resampling.BICUBIC)
    back = resized(half, (side, side), Image.Resampling.BICUBIC)
    return float(np.sqrt(np.mean((back - pixels) ** 2)))


def searched_sizes(resolution: int) -> list[int]:
    """The sizes a face may be searched at with a ``resolution``-pixel model, largest first:
    those it takes from ``SMALLEST`` to ``LARGEST``, else its smallest."""
    sizes = [s for s in valid_sides(resolution) if SMALLEST <= s <= LARGEST]
    return sizes or [min(valid_sides(resolution))]


def _largest_held(
    span: float, crop_at: Callable[[int], np.ndarray], resolution: int, what: str
) -> SizeChoice:
    """The largest size (``LARGEST`` at most) that ``span`` pixels cover and whose crop
    (``crop_at(size)``) holds detail; else the smallest size."""
    sizes = searched_sizes(resolution)
    why = f"{what} spans {span:.0f} px"
    for size in sizes[:-1]:  # largest first
        if size > span:
            continue
        sharpness = detail(crop_at(size))
        if sharpness >= DETAIL_FLOOR:
            return SizeChoice(size, f"{why} and holds detail at {size} px")
        why += f", too blurred for {size} px (detail {sharpness:.3f} < {DETAIL_FLOOR})"
    return SizeChoice(sizes[-1], why)


def choose_input_size(photo: np.ndarray, keypoints: np.ndarray, resolution: int) -> SizeChoice:
    """The input size for the face with ``keypoints`` in ``photo`` (float [3, H, W]) and a
    ``resolution``-pixel model (see the module's docstring)."""
    quad = ffhq_quad(keypoints)
    span = float(np.hypot(*(quad[3] - quad[0])))
    return _largest_held(
        span, lambda size: align(photo, keypoints, size).image, resolution, "the face's crop in the photo"
    )


def choose_crop_size(crop: np.ndarray, resolution: int) -> SizeChoice:
    """The input size for an aligned square face crop (float [3, S, S]) and a ``resolution``-pixel
    model: as for a face of a photo, the crop being the face's FFHQ crop."""
    return _largest_held(
        crop.shape[-1], lambda size: downscaled(crop, size), resolution, "the aligned crop"
    )


def downscaled(image: np.ndarray, side: int) -> np.ndarray:
    """A float [3, H, W] image resized to ``side``×``side``, antialiased (Lanczos)."""
    pixels = resized(np.ascontiguousarray(image.transpose(1, 2, 0)), (side, side), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.clip(pixels, 0.0, 1.0).transpose(2, 0, 1))
