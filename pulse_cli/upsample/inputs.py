"""What each input of a job is: an aligned face crop, or a photo whose faces are found and aligned.

A square the model takes (its side divides the model's resolution by a power of two) that is no
larger than the input size, or smaller than ``DETECTABLE`` (too small to find a face in), is an
aligned crop searched as it is (PULSE's own inputs). Anything else is looked at by the face
detector (``pulse_cli.faces``), unless ``FaceOptions.mode`` says otherwise: a square whose one face
fills it (its FFHQ crop is the square, within ``FILL_TOLERANCE``) is an aligned crop already and is
downscaled to the input size; in any other image each face found becomes one output, searched from
its FFHQ-aligned crop. ``Crop`` is what an output is searched from when that is not its input file
as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from pulse_cli.errors import first_line
from pulse_cli.faces.align import ffhq_quad
from pulse_cli.faces.detect import MIN_FACE, PYRAMID_MIN, Detector, Face
from pulse_cli.faces.extract import FoundFace, find_faces, no_face
from pulse_cli.faces.screen import MIN_CONFIDENCE
from pulse_cli.faces.sizes import SMALLEST, SizeChoice, choose_crop_size, choose_input_size, downscaled
from pulse_cli.images import InputImageError, open_image, oriented_size, read_image, size_advice, valid_sides
from pulse_cli.models.wheel import ModelFetchError
from pulse_cli.weights import WeightsError

MODES = ("auto", "aligned", "detect")
FILL_TOLERANCE = 0.15  # how far a face's FFHQ crop may be from the whole square (side, centre)
ROLL_TOLERANCE = 10.0  # degrees: an aligned crop's eyes are level
DETECTABLE = 64  # px: an aligned crop's face is about half of it, and MTCNN looks for 20 px and more


def default_input_size(resolution: int) -> int:
    """PULSE's input side for a ``resolution``-pixel model: 16 px (16×16 → 1024²) when it works,
    else the largest working side below 16, else the smallest that works. Faces of photos are
    searched at a size chosen per face unless told (``pulse_cli.faces.sizes``); this is the size
    of inputs searched as they are."""
    sides = valid_sides(resolution)
    if not sides:
        raise ValueError(f"a {resolution} px model takes no input size (it needs at least 4 px)")
    smaller = [side for side in sides if side <= SMALLEST]
    return smaller[0] if smaller else sides[-1]


class FaceDetectionError(RuntimeError):
    """The face detector cannot be had (its weights are missing or damaged)."""


@dataclass(frozen=True)
class FaceOptions:
    """How a job reads its inputs (``pulse upsample``'s face options).

    ``mode``: ``auto`` (aligned crops as they are, faces detected in the rest), ``aligned`` (every
    input is an aligned square crop) or ``detect`` (every input is a photo). ``input_size``: the side
    faces are searched at (default: chosen per face, ``pulse_cli.faces.sizes``; 16 is PULSE's).
    ``min_confidence``: detections below it are dropped (``pulse_cli.faces.screen``).
    ``max_faces`` keeps a photo's highest scoring faces, ``only_center_face`` the one nearest its
    centre; ``min_face`` is the smallest face side looked for (px). ``bg_scale``: how much a photo
    is enlarged to paste its faces back (default ``pulse_cli.faces.paste.default_scale``).
    ``weights``: MTCNN's (default: the cache).
    """

    mode: str = "auto"
    input_size: int | None = None
    max_faces: int | None = None
    only_center_face: bool = False
    min_face: int = MIN_FACE
    min_confidence: float = MIN_CONFIDENCE
    bg_scale: float | None = None
    weights: Path | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown input mode {self.mode!r}; known: {', '.join(MODES)}")
        if self.max_faces is not None and self.max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {self.max_faces}")
        if self.min_face < PYRAMID_MIN:
            raise ValueError(f"min_face must be at least {PYRAMID_MIN} px, got {self.min_face}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, got {self.min_confidence}")
        if self.bg_scale is not None and not (np.isfinite(self.bg_scale) and self.bg_scale > 0):
            raise ValueError(f"bg_scale must be a positive number, got {self.bg_scale}")

    def recorded(self, resolution: int) -> dict[str, Any]:
        """The face options that shape what a face's output is searched from, as report.json
        records them beside the search options (and a rerun compares them): not ``bg_scale`` or
        ``weights``, which change neither the crop nor its search."""
        return {
            "input_mode": self.mode,
            "input_size": self.size_for(resolution) or "per face",
            "max_faces": self.max_faces,
            "only_center_face": self.only_center_face,
            "min_face": self.min_face,
            "min_confidence": self.min_confidence,
        }

    def size_for(self, resolution: int) -> int | None:
        """The input size forced for a ``resolution``-pixel model, or None when each face gets its
        own; ``ValueError`` when it cannot work."""
        if self.input_size is None:
            return None
        if self.input_size not in valid_sides(resolution):
            sides = "/".join(str(side) for side in valid_sides(resolution))
            raise ValueError(
                f"input size {self.input_size} does not work for a {resolution}x{resolution} model: "
                f"it takes {sides} px"
            )
        return self.input_size


@dataclass(frozen=True)
class Crop:
    """What one output is searched from when it is not its input file as it is.

    ``image``: float32 [3, s, s] in [0, 1], written as ``faces/{name}.png``. ``note``: why and how it
    was made (shown and recorded). ``found``: the detected face and its alignment, for a face of a
    photo, and ``photo``: the pasted photo's name (``photos/{photo}.png``).
    """

    name: str
    image: np.ndarray
    note: str | None = None
    found: FoundFace | None = None
    photo: str | None = None

    @property
    def file(self) -> str:
        """The crop's file, relative to the output folder."""
        return f"faces/{self.name}.png"


def image_size(path: Path) -> tuple[int, int] | None:
    """An image's (width, height) as its header declares them, turned as its EXIF orientation says
    (a large JPEG's before it is read reduced), or None when it cannot be read (the error comes when
    it is loaded)."""
    try:
        with open_image(path) as image:
            return oriented_size(image)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError, SyntaxError):
        return None


def fills_square(face: Face, side: int) -> bool:
    """Whether ``face``'s FFHQ crop is (within ``FILL_TOLERANCE``) the whole ``side``-pixel square,
    level: the square is an aligned face crop already."""
    quad = ffhq_quad(face.keypoints)
    top = quad[3] - quad[0]
    centre = quad.mean(axis=0) + 0.5  # continuous coordinates
    roll = abs(np.degrees(np.arctan2(top[1], top[0])))
    return (
        abs(np.hypot(*top) / side - 1.0) <= FILL_TOLERANCE
        and bool(np.all(np.abs(centre / side - 0.5) <= FILL_TOLERANCE))
        and roll <= ROLL_TOLERANCE
    )


def center_face(faces: list[FoundFace], width: int, height: int) -> FoundFace:
    """The face whose box centre is nearest the photo's centre."""

    def distance(item: FoundFace) -> float:
        x, y, w, h = item.face.box
        return float(np.hypot(x + w / 2 - width / 2, y + h / 2 - height / 2))

    return min(faces, key=distance)


class InputReader:
    """Decides what each input is and makes its crops, with the detector made on first need."""

    def __init__(
        self, resolution: int, faces: FaceOptions, detector: Callable[[], Detector] | Detector | None = None
    ) -> None:
        self.resolution = resolution
        self.options = faces
        self.input_size = faces.size_for(resolution)
        self._detector = detector

    @property
    def detector(self) -> Detector:
        """The detector, made (its weights fetched) the first time a photo needs it."""
        if not isinstance(self._detector, Detector):
            try:
                if self._detector is None:
                    self._detector = Detector(self.options.weights, min_face=self.options.min_face)
                else:
                    self._detector = self._detector()
            except (ModelFetchError, WeightsError, OSError) as exc:
                raise FaceDetectionError(f"face detection (MTCNN) unavailable: {first_line(exc)}") from None
        return self._detector

    def crops(self, path: Path, stem: str) -> list[Crop] | None:
        """None for an input searched as it is; else the crops its outputs are searched from
        (``{stem}`` downscaled, or ``{stem}_{k}`` per face). ``InputImageError`` for a photo
        without a face or an image that cannot be read."""
        size = image_size(path)
        if size is None:
            return None  # unreadable: loading it says why
        width, height = size
        mode, side = self.options.mode, self.input_size
        takes = width == height and width in valid_sides(self.resolution)
        as_is = width <= (side or SMALLEST) or (takes and width < DETECTABLE)
        if mode != "detect" and width == height and as_is:
            return None
        if mode == "aligned":
            if width != height:
                return None  # loading it says it must be square
            return [self._aligned(stem, read_image(path), "an aligned face crop")]
        if mode == "auto" and min(width, height) < PYRAMID_MIN:
            return None  # too small to look for faces in: loading it says what sizes work
        return self._faces(path, stem, read_image(path), size)

    def _forced(self) -> SizeChoice | None:
        """The size ``--input-size`` forces on every face, if any."""
        if self.input_size is None:
            return None
        return SizeChoice(self.input_size, f"--input-size {self.input_size}")

    def _size_choice(self, photo: np.ndarray, keypoints: np.ndarray) -> SizeChoice:
        return self._forced() or choose_input_size(photo, keypoints, self.resolution)

    def _aligned(self, stem: str, image: np.ndarray, what: str) -> Crop:
        """An aligned square crop, at the forced input size or the one it holds."""
        width = image.shape[-1]
        choice = self._forced() or choose_crop_size(image, self.resolution)
        size = choice.size
        if size == width:
            return Crop(stem, image, f"{what}: searched at its own {size}x{size} ({choice.reason})")
        how = f"downscaled from {width}x{width} to {size}x{size} ({choice.reason})"
        return Crop(stem, downscaled(image, size), f"{what}: {how}")

    def _faces(self, path: Path, stem: str, image: np.ndarray, declared: tuple[int, int]) -> list[Crop]:
        height, width = image.shape[1:]
        faces = find_faces(image, self.detector, self._size_choice, stem, self.options.min_confidence)
        found = faces.found
        if not found:
            small = f" ({size_advice(self.resolution)})" if min(width, height) < DETECTABLE else ""
            raise InputImageError(path, no_face(faces.dropped) + small)
        aligned = self.options.mode == "auto" and width == height and len(found) == 1
        if aligned and fills_square(found[0].face, width):
            return [self._aligned(stem, image, "an aligned face crop (its one face fills it)")]
        kept = found
        if self.options.only_center_face:
            kept = [center_face(found, width, height)]
        elif self.options.max_faces is not None:
            kept = found[: self.options.max_faces]
        note = f"face {{k}} of {len(kept)} in {path.name}"
        if len(kept) < len(found):
            note += f" ({len(found)} found, {len(kept)} kept)"
        if declared != (width, height):  # read reduced (images.draft_scale): boxes are in the reduced pixels
            note += f" (a {declared[0]}x{declared[1]} photo read at {width}x{height})"
        if faces.dropped:
            note += f"; dropped {'; '.join(faces.dropped)}"
        return [
            Crop(
                f"{stem}_{k}",
                item.alignment.image,
                f"{note.format(k=k)}; searched at {item.alignment.size} px: {item.size_reason}",
                dataclasses.replace(item, name=f"{stem}_{k}"),
                photo=stem,
            )
            for k, item in enumerate(kept, start=1)
        ]
