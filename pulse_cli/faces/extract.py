"""Finding, aligning and writing the faces of photos: the library half of ``pulse faces``.

For a photo ``{stem}.{ext}`` it writes ``faces/{stem}_{k}.png`` (the aligned crop of face ``k``,
numbered from 1 in score order), ``faces/{stem}_{k}.json`` (its box, keypoints, confidence and the
crop's placement in the photo) and ``annotated/{stem}.png``, each atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pulse_cli.atomic import atomic_save_image, atomic_write
from pulse_cli.faces.align import Alignment, align
from pulse_cli.faces.annotate import annotate
from pulse_cli.faces.detect import Detector, Face
from pulse_cli.faces.screen import MIN_CONFIDENCE, drop_reason
from pulse_cli.faces.sizes import SizeChoice
from pulse_cli.images import InputImageError, read_image, to_pil

NO_FACE = "no face found"


@dataclass(frozen=True)
class FoundFace:
    """One face of a photo: its name (``{stem}_{k}``), what the detector found, its aligned crop,
    and, when its size was chosen for it, why (``pulse_cli.faces.sizes``)."""

    name: str
    face: Face
    alignment: Alignment
    size_reason: str | None = None

    def to_json(self, photo: Path) -> dict[str, Any]:
        """The face's record: the photo it is in, box, keypoints, confidence and crop placement."""
        return {
            "name": self.name,
            "photo": str(photo),
            **self.face.to_json(),
            "transform": self.alignment.transform_json(),
            **({"size_reason": self.size_reason} if self.size_reason else {}),
        }


@dataclass(frozen=True)
class PhotoFaces:
    """The faces found in a photo, and the detections dropped (each with why: ``faces.screen``)."""

    found: list[FoundFace]
    dropped: list[str] = field(default_factory=list)


SizeRule = Callable[[np.ndarray, np.ndarray], SizeChoice]  # (photo, keypoints) -> its input size


def find_faces(
    image: np.ndarray,
    detector: Detector,
    size: int | SizeRule,
    stem: str,
    min_confidence: float = MIN_CONFIDENCE,
) -> PhotoFaces:
    """Every face the detector finds in ``image`` (float [3, H, W]) that ``faces.screen`` keeps,
    aligned to ``size`` px (or the size a rule chooses for each face), named ``{stem}_{k}`` with k
    from 1 in score order."""
    found, dropped = [], []
    for face in detector(image):
        reason = drop_reason(face, min_confidence)
        if reason is not None:
            dropped.append(reason)
            continue
        choice = size(image, face.keypoints) if callable(size) else SizeChoice(size, "")
        name = f"{stem}_{len(found) + 1}"
        found.append(FoundFace(name, face, align(image, face.keypoints, choice.size), choice.reason or None))
    return PhotoFaces(found, dropped)


def no_face(dropped: list[str]) -> str:
    """The cause recorded for a photo without a face kept, naming what was dropped."""
    return NO_FACE + (f" ({len(dropped)} dropped: {'; '.join(dropped)})" if dropped else "")


def extract_photo(
    path: Path, out: Path, detector: Detector, size: int | SizeRule, min_confidence: float = MIN_CONFIDENCE
) -> PhotoFaces:
    """Detect and align the faces of the photo at ``path`` and write them under ``out`` (see the
    module's docstring). Raises ``InputImageError`` for an unreadable photo or one without a face."""
    image = read_image(path)
    faces = find_faces(image, detector, size, path.stem, min_confidence)
    found = faces.found
    if not found:
        raise InputImageError(path, no_face(faces.dropped))
    faces_dir, annotated_dir = out / "faces", out / "annotated"
    faces_dir.mkdir(parents=True, exist_ok=True)
    annotated_dir.mkdir(parents=True, exist_ok=True)
    for item in found:
        atomic_save_image(to_pil(item.alignment.image), faces_dir / f"{item.name}.png")
        with atomic_write(faces_dir / f"{item.name}.json", "w") as file:
            json.dump(item.to_json(path), file, indent=1)
    picture = annotate(image, [item.face for item in found], [item.alignment for item in found])
    atomic_save_image(picture, annotated_dir / f"{path.stem}.png")
    return faces
