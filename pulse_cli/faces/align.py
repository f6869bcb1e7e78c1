"""Aligning a face as FFHQ's faces were aligned, from MTCNN's five landmarks.

This follows the FFHQ dataset script (``recreate_aligned_images`` in NVlabs/ffhq-dataset), which
PULSE's ``align_face.py`` also follows: an oriented square (the quad) from the eye centres and the
mouth, then shrink, crop, reflect-pad with blur where the quad leaves the photo, and a quad
transform to four times the output size, antialiased down to it (a crop larger than the face is
in the photo is sampled once, bicubically, instead: ``faces.bicubic``). FFHQ takes the eye centres as the
mean of dlib's six eye points and the mouth corners as its outer-lip points 0 and 6; MTCNN gives
the eye centres and mouth corners directly. Every step works on float pixels (FFHQ rounds to 8 bits
after padding), and the quad is tracked in continuous coordinates, so the crop's position in the
photo (``Alignment.matrix``) is exact and can be inverted to paste a face back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage
from PIL import Image

from pulse_cli.faces import bicubic
from pulse_cli.faces.planes import from_planes, resized, to_planes

TRANSFORM_OVERSAMPLING = 4  # FFHQ: transform_size 4096 for output_size 1024
MAX_SIZE = 4096


@dataclass(frozen=True)
class Alignment:
    """An aligned face crop and where it lies in its photo.

    ``image``: float32 [3, size, size] RGB in [0, 1]. ``quad``: the crop's corners in the photo
    [4, 2] (x, y; pixel centres at integers), FFHQ's order: top-left, bottom-left, bottom-right,
    top-right of the crop. ``matrix`` [2, 3] maps a point of the crop to the photo in continuous
    coordinates (pixel ``i`` spans ``[i, i + 1)``).
    """

    image: np.ndarray
    quad: np.ndarray
    matrix: np.ndarray

    @property
    def size(self) -> int:
        """The crop's side in pixels."""
        return int(self.image.shape[-1])

    @property
    def side_in_photo(self) -> float:
        """The crop's side measured in the photo's pixels."""
        return float(np.hypot(*(self.quad[3] - self.quad[0])))

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Crop pixel coordinates [..., 2] (centres at integers) in the photo's pixels."""
        points = np.asarray(points, np.float64) + 0.5
        return points @ self.matrix[:, :2].T + self.matrix[:, 2] - 0.5

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Photo pixel coordinates [..., 2] in the crop's pixels (the inverse of ``to_photo``)."""
        points = np.asarray(points, np.float64) + 0.5 - self.matrix[:, 2]
        return points @ np.linalg.inv(self.matrix[:, :2]).T - 0.5

    def transform_json(self) -> dict[str, Any]:
        """The crop's placement as JSON: its size, quad and crop-to-photo matrix."""
        return {
            "size": self.size,
            "quad": np.round(self.quad, 3).tolist(),
            "matrix": np.round(self.matrix, 6).tolist(),
            "matrix_maps": "crop (x, y, 1) to photo (x, y), continuous coordinates (pixel i spans [i, i+1))",
        }


def ffhq_quad(keypoints: np.ndarray) -> np.ndarray:
    """FFHQ's oriented square [4, 2] (top-left, bottom-left, bottom-right, top-right) from the five
    points (left eye, right eye, nose, left mouth corner, right mouth corner), in their coordinates."""
    points = np.asarray(keypoints, np.float64)
    eye_left, eye_right = points[0], points[1]
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (points[3] + points[4]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    center = eye_avg + eye_to_mouth * 0.1
    return np.stack([center - x - y, center - x + y, center + x + y, center + x - y])


def _bounds(quad: np.ndarray) -> tuple[int, int, int, int]:
    return (
        int(np.floor(quad[:, 0].min())),
        int(np.floor(quad[:, 1].min())),
        int(np.ceil(quad[:, 0].max())),
        int(np.ceil(quad[:, 1].max())),
    )


def _reflect_pad(pixels: np.ndarray, pad: tuple[int, int, int, int], qsize: float) -> np.ndarray:
    """FFHQ's padding: reflect, then blur and fade to the median towards the padded edges."""
    left, top, right, bottom = pad
    pixels = np.pad(pixels, ((top, bottom), (left, right), (0, 0)), mode="reflect")
    height, width = pixels.shape[:2]
    y, x, _ = np.ogrid[:height, :width, :1]
    with np.errstate(
        divide="ignore", invalid="ignore"
    ):  # a side without padding divides by zero: no fade there
        mask = np.maximum(
            1.0 - np.minimum(np.float32(x) / left, np.float32(width - 1 - x) / right),
            1.0 - np.minimum(np.float32(y) / top, np.float32(height - 1 - y) / bottom),
        )
    mask = np.nan_to_num(mask, nan=0.0)
    blur = qsize * 0.02
    pixels += (scipy.ndimage.gaussian_filter(pixels, [blur, blur, 0]) - pixels) * np.clip(
        mask * 3.0 + 1.0, 0.0, 1.0
    )
    pixels += (np.median(pixels, axis=(0, 1)) - pixels) * np.clip(mask, 0.0, 1.0)
    return pixels


def align(image: np.ndarray, keypoints: np.ndarray, size: int = 16) -> Alignment:
    """The FFHQ-aligned ``size``×``size`` crop of the face with ``keypoints`` [5, 2] (MTCNN's order)
    in ``image`` (float [3, H, W] RGB in [0, 1]), with its placement in the photo."""
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"crop size {size} is outside 1..{MAX_SIZE}")
    quad = ffhq_quad(keypoints)
    pixels = np.asarray(image, np.float32).transpose(1, 2, 0) * 255.0
    height, width = pixels.shape[:2]
    corners = quad + 0.5  # continuous coordinates from here on, as Pillow's transforms take them
    qsize = np.hypot(*(quad[3] - quad[0]))

    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        shrunk = (max(int(np.rint(width / shrink)), 1), max(int(np.rint(height / shrink)), 1))
        pixels = resized(pixels, shrunk, Image.Resampling.LANCZOS)
        corners = corners * [shrunk[0] / width, shrunk[1] / height]
        qsize /= shrink
        height, width = pixels.shape[:2]

    border = max(int(np.rint(qsize * 0.1)), 3)
    left, top, right, bottom = _bounds(corners)
    crop = (
        max(left - border, 0),
        max(top - border, 0),
        min(right + border, width),
        min(bottom + border, height),
    )
    if crop[2] - crop[0] < width or crop[3] - crop[1] < height:
        pixels = pixels[crop[1] : crop[3], crop[0] : crop[2]]
        corners = corners - crop[0:2]
        height, width = pixels.shape[:2]

    left, top, right, bottom = _bounds(corners)
    pad = (
        max(-left + border, 0),
        max(-top + border, 0),
        max(right - width + border, 0),
        max(bottom - height + border, 0),
    )
    if max(pad) > border - 4:
        pad = tuple(max(p, int(np.rint(qsize * 0.3))) for p in pad)
        pixels = _reflect_pad(pixels, pad, qsize)
        corners = corners + pad[0:2]

    if size >= qsize:
        # an enlargement: nothing to antialias, so one bicubic sampling (the kernel the photo is
        # enlarged with to paste faces back) instead of FFHQ's bilinear at 4x and Lanczos down,
        # which blurs (a crop pasted back would differ from the photo by up to 13/255)
        top_left, bottom_left, top_right = corners[0], corners[1], corners[3]
        steps = [(top_right - top_left) / size, (bottom_left - top_left) / size]
        to_pixels = np.stack([*steps, top_left], axis=1)
        crop_pixels = bicubic.warp(pixels, to_pixels, (size, size))
    else:
        transform_size = size * TRANSFORM_OVERSAMPLING
        channels = [
            c.transform(
                (transform_size, transform_size),
                Image.Transform.QUAD,
                tuple(corners.flatten()),
                Image.Resampling.BILINEAR,
            )
            for c in to_planes(pixels)
        ]
        crop_pixels = resized(from_planes(channels), (size, size), Image.Resampling.LANCZOS)
    crop_image = np.clip(crop_pixels / 255.0, 0.0, 1.0).transpose(2, 0, 1)

    top_left, bottom_left, top_right = quad[0] + 0.5, quad[1] + 0.5, quad[3] + 0.5
    matrix = np.stack([(top_right - top_left) / size, (bottom_left - top_left) / size, top_left], axis=1)
    return Alignment(image=np.ascontiguousarray(crop_image, np.float32), quad=quad, matrix=matrix)
