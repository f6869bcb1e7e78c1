"""report.json: what became of each output image, and the progress hooks that hear of it.

The schema is ``UpsampleReport`` (the job) holding one ``ImageRecord`` per output image. It is
rewritten atomically as each image finishes, and read back (``previous_records``) so a resumed job
keeps the records of the images earlier runs made.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from pulse_cli.atomic import atomic_write
from pulse_cli.search import Rescore, StepReport

REPORT_VERSION = 1


@dataclass
class ImageRecord:
    """What became of one output image, as report.json lists it.

    ``name`` is the output's stem, or the input's file name when the input itself was refused.
    ``status`` is ``ok``, ``failed`` or ``skipped`` (its output existed); ``seed`` is the image's own
    seed: searched alone with ``SearchOptions(seed=seed)`` it starts from the same point;
    ``seconds`` is its share of its batch's search.
    ``total`` and ``l2`` are the output's scores from the search (Paddle); ``rescore`` holds them
    as the ``onnx`` backend scored the output's latent again: ``runtime``, ``total`` and ``l2``.
    Where the strategy made the output consistent with its input after the search (the faithful
    one, ``pulse_cli.consistency``), ``l2`` is the output's and ``search_l2`` (and ``rescore``'s
    ``l2``) the generator's image's.
    ``latent`` names the ``.npz`` holding its latent and noise maps, with ``save_latent``.
    ``input_sha256`` is the input file's digest, so a rerun knows whether the input changed.
    ``output``, ``crop`` and ``photo`` are paths relative to the output folder: the upsampled image,
    the crop it was searched from when that is not the input file as it is (``faces/…``), and for a
    face of a photo the photo with its faces pasted back (``photos/…``). ``face`` holds what the
    detector found (``box`` [x, y, w, h], ``confidence``, ``keypoints``) and ``transform``, the
    crop's placement in the photo. ``note`` says how the input was read (downscaled, which face).
    ``identity``, with ``--identity``, is dlib's distance between the face as the input holds it and
    the output (``pulse_cli.faces.identity``: the same person below 0.6).
    """

    name: str
    input: str
    status: str
    model: str
    options: dict[str, Any]
    output: str | None = None
    seed: int | None = None
    l2: float | None = None
    search_l2: float | None = None
    total: float | None = None
    rescore: dict[str, Any] | None = None
    eps_met: bool | None = None
    best_step: int | None = None
    steps_run: int | None = None
    seconds: float | None = None
    niqe: float | None = None
    identity: float | None = None
    latent: str | None = None
    error: str | None = None
    input_sha256: str | None = None
    crop: str | None = None
    face: dict[str, Any] | None = None
    photo: str | None = None
    note: str | None = None


@dataclass
class UpsampleReport:
    """The job's report: the model, the options, which runtime did what in its searches
    (``roles``, from ``Backend.roles``; None until a search ran), one record per output image, and
    the input folder's files left out because they are not images (``ignored``).
    ``contact_sheet_paths`` holds the contact sheet's pages (report.json: ``contact_sheets``, and
    ``contact_sheet``, the first page, as version 1 readers know it)."""

    output_dir: Path
    model: dict[str, Any]
    options: dict[str, Any]
    shard: str | None
    roles: dict[str, str] | None = None
    images: list[ImageRecord] = field(default_factory=list)
    interrupted: bool = False
    report_path: Path | None = None
    contact_sheet_paths: list[Path] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(record.status == status for record in self.images)

    @property
    def failed(self) -> list[ImageRecord]:
        return [record for record in self.images if record.status == "failed"]

    def summary(self) -> dict[str, Any]:
        """Counts of outcomes: total, ok, skipped, failed, how many met eps, and files ignored."""
        return {
            "total": len(self.images),
            "ok": self.count("ok"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "eps_met": sum(bool(record.eps_met) for record in self.images),
            "ignored": len(self.ignored),
            "interrupted": self.interrupted,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "output_dir": str(self.output_dir),
            "model": self.model,
            "options": self.options,
            "shard": self.shard,
            "roles": self.roles,
            "summary": self.summary(),
            "contact_sheet": self.contact_sheet_paths[0].name if self.contact_sheet_paths else None,
            "contact_sheets": [path.name for path in self.contact_sheet_paths],
            "images": [asdict(record) for record in self.images],
            "ignored": self.ignored,
        }

    def save(self) -> None:
        """Rewrite report.json atomically (a reader never sees half of it)."""
        if self.report_path is None:
            return
        with atomic_write(self.report_path, "w") as file:
            json.dump(self.to_dict(), file, indent=2, allow_nan=False, default=_json_default)
            file.write("\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Listener:
    """Progress hooks of a job; the defaults do nothing (the CLI's progress bar overrides them)."""

    def job_started(self, total: int) -> None:
        """``total`` output images will be searched (skipped ones not counted)."""

    def batch_started(self, names: Sequence[str]) -> None:
        """A search over these output images begins."""

    def step(self, report: StepReport) -> None:
        """One search step finished."""

    def image_finished(self, record: ImageRecord) -> None:
        """An output image was written, failed or skipped."""

    def photo_pasted(self, output: str, names: Sequence[str]) -> None:
        """A photo (``output``, relative to the output folder) got its faces ``names`` pasted back."""

    def note(self, text: str) -> None:
        """A remark for the progress output, said once (a backend's first-use cost)."""


def known_fields() -> set[str]:
    """The keys of an image record this version reads (others, from a later one, are dropped)."""
    return {f.name for f in fields(ImageRecord)}


def previous_records(path: Path) -> dict[str, dict[str, Any]]:
    """Records of earlier runs in this report, by name, to keep for the images they made."""
    known = known_fields()
    required = {f.name for f in fields(ImageRecord) if f.default is MISSING}
    try:
        images = json.loads(path.read_text())["images"]
        return {
            record["name"]: {key: value for key, value in record.items() if key in known}
            for record in images
            if required <= record.keys() and record["status"] != "failed" and record.get("l2") is not None
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def finite(value: Any) -> float | None:
    """A score as report.json holds it: a float, or None when it is not finite."""
    number = float(value)
    return number if math.isfinite(number) else None


def rescore_of(rescore: Rescore | None, i: int) -> dict[str, Any] | None:
    """Image ``i``'s scores from the final scoring in another runtime, as its record holds them."""
    if rescore is None:
        return None
    l2 = rescore.scores.get("L2")
    return {
        "runtime": rescore.runtime,
        "total": finite(rescore.scores["TOTAL"][i]),
        "l2": None if l2 is None else finite(l2[i]),
    }
