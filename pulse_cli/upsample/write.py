"""Writing a job's outputs: each searched image, its latent, every step's images, its NIQE, and
the contact sheet (paged, ``SHEET_COLUMNS`` images a page). Every file is written atomically.

``OutputWriter.write_image`` is where an output becomes a file; the crops faces are searched from
are written by ``write_crop`` (paste-back into photos is ``photos``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from pulse_cli.atomic import atomic_save_image, atomic_write
from pulse_cli.contact_sheet import SheetColumn, save_contact_sheet
from pulse_cli.images import InputImageError, load_input, read_image, to_pil
from pulse_cli.search import SearchResult, StepReport
from pulse_cli.upsample.inputs import Crop
from pulse_cli.upsample.report import ImageRecord, UpsampleReport

NIQE_MIN_SIDE = 192  # NIQE's 96-pixel blocks at two scales
SHEET_COLUMNS = 16


def step_digits(steps: int) -> int:
    """Digits of the step number in intermediate file names (two for PULSE's 100 steps)."""
    return max(2, math.ceil(math.log10(steps)))


class OutputWriter:
    """Writes one job's files into ``output_dir``, named as PULSE's run.py names them."""

    def __init__(self, output_dir: Path, *, save_latent: bool = False, niqe: bool = False) -> None:
        self.output_dir = output_dir
        self.save_latent = save_latent
        self.niqe = niqe

    def write_image(self, output: str, image: np.ndarray) -> Path:
        """Write an output image ([3,R,R] in [0, 1]) to ``output`` (``Item.output``, relative to the
        output folder); the path written."""
        path = self.output_dir / output
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save_image(to_pil(image), path)
        return path

    def write_crop(self, crop: Crop) -> None:
        """Write the crop an output is searched from as ``faces/{name}.png``."""
        self.write_image(crop.file, crop.image)

    def write_latent(self, name: str, i: int, result: SearchResult) -> str:
        """Write image ``i``'s best latent and noise maps as ``{name}.npz`` (``latent`` [G, D] in
        the search's ``layout``, which ``Generator.expand_latent`` spreads over the L synthesis rows;
        ``noise_{k}`` [1, r, r] for each noise layer), from which its output can be made again."""
        path = self.output_dir / f"{name}.npz"
        arrays = {"latent": result.best_latent[i], "layout": np.array(result.layout)}
        arrays.update({f"noise_{k}": noise[i] for k, noise in enumerate(result.best_noise)})
        with atomic_write(path, "wb") as file:
            np.savez_compressed(file, **arrays)
        return path.name

    def intermediate(self, names: Sequence[str], steps: int) -> Callable[[StepReport], None]:
        """An ``on_step`` hook writing each step's HR and LR images as PULSE's run.py names them."""
        digits = step_digits(steps)
        for name in names:
            for kind in ("HR", "LR"):
                (self.output_dir / name / kind).mkdir(parents=True, exist_ok=True)

        def write(report: StepReport) -> None:
            for kind, images in (("HR", report.gen_im), ("LR", report.gen_im_lr)):
                if images is None:
                    continue
                for name, image in zip(names, images):
                    path = self.output_dir / name / kind / f"{name}_{report.step:0{digits}d}.png"
                    atomic_save_image(to_pil(image), path)

        return write

    @staticmethod
    def niqe_of(output: Path) -> float | None:
        """The output's NIQE (standard MATLAB variant), or None when it cannot be scored."""
        from pulse_cli.niqe import NiqeError, niqe

        try:
            score = float(niqe(output))
        except NiqeError:
            return None
        return score if math.isfinite(score) else None


def searched_input(output_dir: Path, record: ImageRecord, resolution: int) -> np.ndarray:
    """What an output was searched from: its crop (``faces/…``) when it has one, else its input."""
    if record.crop is not None:
        return read_image(output_dir / record.crop)
    return load_input(record.input, resolution)


def _with_outputs(report: UpsampleReport) -> list[ImageRecord]:
    return [record for record in report.images if record.status != "failed" and record.output is not None]


def sheet_pages(
    report: UpsampleReport, resolution: int, per_page: int = SHEET_COLUMNS
) -> Iterator[list[SheetColumn]]:
    """Contact-sheet columns of every image of ``report`` that has an output, a page (at most
    ``per_page`` images) at a time, so one page's images are in memory at once; an image whose
    input or output cannot be read is left out of its page."""
    records = _with_outputs(report)
    for start in range(0, len(records), per_page):
        columns = []
        for record in records[start : start + per_page]:
            try:
                lr = searched_input(report.output_dir, record, resolution)
                hr = read_image(report.output_dir / record.output)
            except InputImageError:
                continue
            columns.append(SheetColumn(record.name, lr, hr, l2=record.l2, eps_met=record.eps_met))
        yield columns


def sheet_columns(report: UpsampleReport, resolution: int, limit: int = SHEET_COLUMNS) -> list[SheetColumn]:
    """Contact-sheet columns for the first ``limit`` images of ``report`` that have an output."""
    return next(sheet_pages(report, resolution, limit), [])


def page_paths(path: Path, pages: int) -> list[Path]:
    """Where each page of a contact sheet goes: ``path`` for one page, else ``{stem}_1.png``, …"""
    if pages == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{page}{path.suffix}") for page in range(1, pages + 1)]


def save_contact_sheets(report: UpsampleReport, resolution: int, path: Path) -> list[Path]:
    """Draw the contact sheet of ``report``'s outputs at ``path``, paged when there are more than
    ``SHEET_COLUMNS`` (``contact_sheet_1.png``, ``contact_sheet_2.png``, …), and remove the pages
    of this name an earlier run left that this one did not draw. The paths written."""
    pages = page_paths(path, math.ceil(len(_with_outputs(report)) / SHEET_COLUMNS))
    written = [
        save_contact_sheet(columns, page, resolution)
        for columns, page in zip(sheet_pages(report, resolution), pages)
        if columns
    ]
    ours = re.compile(rf"{re.escape(path.stem)}(_\d+)?{re.escape(path.suffix)}")
    for stale in path.parent.iterdir():
        if ours.fullmatch(stale.name) and stale not in written:
            stale.unlink()
    return written
