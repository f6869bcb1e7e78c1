"""Finding, aligning and writing the faces of photos: the library half of ``pulse faces``.

For a photo ``{stem}.{ext}`` it writes ``faces/{stem}_{k}.png`` (the aligned crop of face ``k``,
numbered from 1 in score order), ``faces/{stem}_{k}.json`` (its box, keypoints, confidence and the
crop's placement in the photo) and ``annotated/{stem}.png``, each atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pulse_cli.atomic import atomic_save_image, atomic_write
from pulse_cli.faces.align import Alignment, align
from pulse_cli.faces.annotate import annotate
from pulse_cli.faces.detect import Detector, Face
from pulse_cli.images import InputImageError, read_image, to_pil

NO_FACE = "no face found"


@dataclass(frozen=True)
class FoundFace:
    """One face of a photo: its name (``{stem}_{k}``), what the detector found, and its aligned crop."""

    name: str
    face: Face
    alignment: Alignment

    def to_json(self, photo: Path) -> dict[str, Any]:
        """The face's record: the photo it is in, box, keypoints, confidence and crop placement."""
        return {
            "name": self.name,
            "photo": str(photo),
            **self.face.to_json(),
            "transform": self.alignment.transform_json(),
        }


def find_faces(image: np.ndarray, detector: Detector, size: int, stem: str) -> list[FoundFace]:
    """Every face the detector finds in ``image`` (float [3, H, W]), aligned to ``size`` px, named
    ``{stem}_{k}`` with k from 1 in score order."""
    return [
        FoundFace(f"{stem}_{k}", face, align(image, face.keypoints, size))
        for k, face in enumerate(detector(image), start=1)
    ]


def extract_photo(path: Path, out: Path, detector: Detector, size: int) -> list[FoundFace]:
    """Detect and align the faces of the photo at ``path`` and write them under ``out`` (see the
    module's docstring). Raises ``InputImageError`` for an unreadable photo or one without a face."""
    image = read_image(path)
    found = find_faces(image, detector, size, path.stem)
    if not found:
        raise InputImageError(path, NO_FACE)
    faces_dir, annotated_dir = out / "faces", out / "annotated"
    faces_dir.mkdir(parents=True, exist_ok=True)
    annotated_dir.mkdir(parents=True, exist_ok=True)
    for item in found:
        atomic_save_image(to_pil(item.alignment.image), faces_dir / f"{item.name}.png")
        with atomic_write(faces_dir / f"{item.name}.json", "w") as file:
            json.dump(item.to_json(path), file, indent=1)
    picture = annotate(image, [item.face for item in found], [item.alignment for item in found])
    atomic_save_image(picture, annotated_dir / f"{path.stem}.png")
    return found
