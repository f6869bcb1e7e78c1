"""Pasting upsampled faces back into their photo, enlarged.

The background is the photo enlarged with bicubic resampling; each face is warped through the
inverse of its alignment (``pulse_cli.faces.align.Alignment``) and blended in with a mask that
fades to zero towards the crop's edges, so no seam shows where the crop ends. By default the photo
is enlarged so each face keeps its upsampled resolution, but never past ``MAX_SIDE`` pixels on its
longer side (a 64× enlargement of a whole photo would be far larger than any face in it needs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from pulse_cli.faces import bicubic
from pulse_cli.faces.align import Alignment
from pulse_cli.faces.planes import resized

MAX_SIDE = 4096  # the default enlarged photo's longer side, at most
FEATHER = 0.1  # the width of the blend at the crop's edges, as a fraction of its side


def default_scale(
    photo_size: tuple[int, int], faces: Sequence[tuple[int, Alignment]], max_side: int = MAX_SIDE
) -> float:
    """How much to enlarge a ``(width, height)`` photo so the largest upsampled face (``(side,
    alignment)`` pairs) keeps its resolution: at least 1, and at most ``max_side`` on the longer side."""
    wanted = max((side / alignment.side_in_photo for side, alignment in faces), default=1.0)
    return float(max(1.0, min(wanted, max_side / max(photo_size))))


def feather_mask(size: int, feather: float = FEATHER) -> np.ndarray:
    """[size, size] weights: 1 inside, easing to 0 over ``feather`` × size towards each edge."""
    centres = (np.arange(size) + 0.5) / size
    edge = np.minimum(centres, 1.0 - centres) / max(feather, 1e-6)
    ramp = np.clip(edge, 0.0, 1.0)
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no kink where the fade starts
    return np.minimum(ramp[:, None], ramp[None, :]).astype(np.float32)


def _enlarge(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """[H, W, C] pixels enlarged bicubically to [height, width, C] (unchanged at the same size)."""
    if (width, height) == (photo.shape[1], photo.shape[0]):
        return photo.copy()
    return resized(photo, (width, height), Image.Resampling.BICUBIC)


def paste(
    photo: np.ndarray,
    faces: Sequence[tuple[np.ndarray, Alignment]],
    scale: float | None = None,
    feather: float = FEATHER,
) -> np.ndarray:
    """``photo`` (float [3, H, W] in [0, 1]) enlarged by ``scale`` (default: ``default_scale``) with
    each ``(face, alignment)`` pasted where its alignment took it from; ``face`` is a float
    [3, S, S] square (the upsampled crop, any S). Returns float [3, round(H·scale), round(W·scale)]."""
    height, width = photo.shape[1:]
    if scale is None:
        scale = default_scale((width, height), [(face.shape[-1], alignment) for face, alignment in faces])
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    out_width, out_height = max(round(width * scale), 1), max(round(height * scale), 1)
    canvas = _enlarge(np.asarray(photo, np.float32).transpose(1, 2, 0), out_width, out_height)
    # the output's continuous coordinates per photo coordinate, per axis (rounding makes them differ)
    stretch = np.array([out_width / width, out_height / height])
    for face, alignment in faces:
        _blend(canvas, np.asarray(face, np.float32).transpose(1, 2, 0), alignment, stretch, feather)
    return np.clip(canvas, 0.0, 1.0).transpose(2, 0, 1)


def _blend(
    canvas: np.ndarray, face: np.ndarray, alignment: Alignment, stretch: np.ndarray, feather: float
) -> None:
    """Warp ``face`` [S, S, C] into ``canvas`` [H, W, C] where ``alignment``'s crop lies, in place."""
    # crop continuous coordinates -> output continuous coordinates
    forward = alignment.matrix * stretch[:, None]
    corners = np.array([[0, 0], [0, 1], [1, 1], [1, 0]]) * alignment.size
    placed = corners @ forward[:, :2].T + forward[:, 2]
    left, top = np.floor(placed.min(axis=0)).astype(int)
    right, bottom = np.ceil(placed.max(axis=0)).astype(int)
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, canvas.shape[1]), min(bottom, canvas.shape[0])
    if right <= left or bottom <= top:
        return  # the crop lies outside the photo
    # shrink a face larger than its place first, antialiased: the warp itself only interpolates
    side_out = float(np.hypot(*forward[:, 0])) * alignment.size
    side = face.shape[0]
    if side > side_out * 1.5:
        side = max(int(round(side_out)), 1)
        face = resized(face, (side, side), Image.Resampling.LANCZOS)
    # output continuous coordinates (relative to the region) -> face continuous coordinates
    to_crop = np.linalg.inv(np.vstack([forward, [0, 0, 1]]))[:2]
    to_face = to_crop * (side / alignment.size)
    to_face[:, 2] += to_face[:, :2] @ [left, top]
    data = tuple(to_face.flatten())
    region = (right - left, bottom - top)
    warped = bicubic.warp(face, to_face, region)  # the kernel the background was enlarged with
    mask_image = Image.fromarray(feather_mask(side, feather), mode="F")
    mask = np.asarray(mask_image.transform(region, Image.Transform.AFFINE, data, Image.Resampling.BILINEAR))[
        :, :, None
    ]
    target = canvas[top:bottom, left:right]
    target += (warped - target) * np.clip(mask, 0.0, 1.0)
