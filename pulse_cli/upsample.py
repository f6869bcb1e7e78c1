"""Upsampling a folder: the batch job behind ``pulse upsample``, as a library call.

``upsample_folder(generator, input_dir, output_dir, options)`` searches every input (or one shard
of them) and writes, as PULSE's run.py names them, ``{stem}.png`` (``{stem}_{k}.png`` with
duplicates), ``{stem}/HR/{stem}_{step}.png`` and ``{stem}/LR/…`` with ``save_intermediate``, and
``{stem}.npz`` (the best image's latent and noise maps) with ``save_latent``; plus ``report.json``,
rewritten as each image finishes, and ``contact_sheet.png``. Every file is written atomically. An
input that fails is recorded with its error and the job goes on; existing outputs are skipped
unless ``overwrite``.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from pulse_cli import plugins
from pulse_cli.atomic import atomic_save_image, atomic_write
from pulse_cli.contact_sheet import SheetColumn, save_contact_sheet
from pulse_cli.graphs.losses import parse_loss_str
from pulse_cli.images import InputImageError, load_input, read_image, to_pil
from pulse_cli.models.generator import Generator
from pulse_cli.options import SearchOptions
from pulse_cli.search import Rescore, SearchResult, StepReport, search

NIQE_MIN_SIDE = 192  # NIQE's 96-pixel blocks at two scales
SHEET_COLUMNS = 16
REPORT_VERSION = 1


class UpsampleError(ValueError):
    """A job that cannot start: missing or empty input folder, bad shard, bad options."""


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (from 0) of ``count`` disjoint slices of the sorted inputs."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UpsampleError(f"shard {self.index}/{self.count}: need 0 <= K < N in K/N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` (K counted from 0, as ``PADDLE_TRAINER_ID`` is)."""
        index, _, count = text.partition("/")
        try:
            numbers = int(index), int(count)
        except ValueError:
            raise UpsampleError(f"shard {text!r}: expected K/N, e.g. 0/4 for the first of four") from None
        return cls(*numbers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Shard | None:
        """The shard ``paddle.distributed.launch`` gives this worker, or None outside it."""
        count = environ.get("PADDLE_TRAINERS_NUM")
        if not count or int(count) < 2:
            return None
        return cls(int(environ.get("PADDLE_TRAINER_ID", "0")), int(count))

    def select(self, items: Sequence[Any]) -> list[Any]:
        """This shard's items: every ``count``-th one, starting at ``index``."""
        return list(items[self.index :: self.count])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class ImageRecord:
    """What became of one output image, as report.json lists it.

    ``name`` is the output's stem, or the input's file name when the input itself was refused.
    ``status`` is ``ok``, ``failed`` or ``skipped`` (its output existed); ``seed`` is the seed its
    search was drawn with, so it can be reproduced; ``seconds`` is its share of its batch's search.
    ``total`` and ``l2`` are the output's scores from the search (Paddle); ``rescore`` holds them
    as the ``onnx`` backend scored the output again: ``runtime``, ``total`` and ``l2``.
    ``latent`` names the ``.npz`` holding its latent and noise maps, with ``save_latent``.
    """

    name: str
    input: str
    status: str
    model: str
    options: dict[str, Any]
    output: str | None = None
    seed: int | None = None
    l2: float | None = None
    total: float | None = None
    rescore: dict[str, Any] | None = None
    eps_met: bool | None = None
    best_step: int | None = None
    steps_run: int | None = None
    seconds: float | None = None
    niqe: float | None = None
    latent: str | None = None
    error: str | None = None


@dataclass
class UpsampleReport:
    """The job's report: the model, the options, which runtime did what in its searches
    (``roles``, from ``backends.roles``; None until a search ran) and one record per output image."""

    output_dir: Path
    model: dict[str, Any]
    options: dict[str, Any]
    shard: str | None
    roles: dict[str, str] | None = None
    images: list[ImageRecord] = field(default_factory=list)
    interrupted: bool = False
    report_path: Path | None = None
    contact_sheet_path: Path | None = None

    def count(self, status: str) -> int:
        return sum(record.status == status for record in self.images)

    @property
    def failed(self) -> list[ImageRecord]:
        return [record for record in self.images if record.status == "failed"]

    def summary(self) -> dict[str, Any]:
        """Counts of outcomes: total, ok, skipped, failed, and how many met eps."""
        return {
            "total": len(self.images),
            "ok": self.count("ok"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "eps_met": sum(bool(record.eps_met) for record in self.images),
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
            "contact_sheet": self.contact_sheet_path.name if self.contact_sheet_path else None,
            "images": [asdict(record) for record in self.images],
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


@dataclass(frozen=True)
class Item:
    """One output image to make: its name (``{stem}`` or ``{stem}_{k}``) and its input file."""

    name: str
    path: Path


def list_inputs(input_dir: str | Path) -> list[Path]:
    """The regular, non-hidden files of ``input_dir``, sorted by name; a clear error when none."""
    folder = Path(input_dir)
    if not folder.exists():
        raise UpsampleError(f"input folder {folder} does not exist")
    if not folder.is_dir():
        raise UpsampleError(f"input {folder} is not a folder")
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    if not files:
        raise UpsampleError(f"input folder {folder} has no files to upsample")
    return files


def plan_items(inputs: Sequence[Path], duplicates: int) -> tuple[list[Item], list[tuple[Path, str]]]:
    """The output images for these inputs, and the inputs refused because their stem is taken."""
    items: list[Item] = []
    refused: list[tuple[Path, str]] = []
    stems: dict[str, Path] = {}
    for path in inputs:
        if path.stem in stems:
            refused.append((path, f"its output name {path.stem}.png clashes with {stems[path.stem].name}'s"))
            continue
        stems[path.stem] = path
        if duplicates == 1:
            items.append(Item(path.stem, path))
        else:
            items.extend(Item(f"{path.stem}_{k}", path) for k in range(1, duplicates + 1))
    return items, refused


def check_options(options: SearchOptions) -> None:
    """Fail before any search when the loss string or optimizer names nothing loadable."""
    try:
        parse_loss_str(options.loss_str, plugins.available("losses"))
        plugins.load("optimizers", options.opt_name)
    except (ValueError, LookupError) as exc:
        raise UpsampleError(str(exc)) from None


def batch_seed(seed: int | None, names: Sequence[str]) -> int:
    """The seed of one batch's search: from ``seed`` and the batch's names when given (so duplicates
    differ and a resumed or sharded job redraws the same start), otherwise fresh."""
    if seed is None:
        return secrets.randbits(32)
    return zlib.crc32(f"{seed}:{'/'.join(names)}".encode())


def step_digits(steps: int) -> int:
    """Digits of the step number in intermediate file names (two for PULSE's 100 steps)."""
    return max(2, math.ceil(math.log10(steps)))


def _shard_suffix(shard: Shard | None) -> str:
    return "" if shard is None else f"_shard{shard.index}of{shard.count}"


def _previous_records(path: Path) -> dict[str, dict[str, Any]]:
    """Records of earlier runs in this report, by name, to keep for the images they made."""
    known = {f.name for f in fields(ImageRecord)}
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


def _finite(value: Any) -> float | None:
    """A score as report.json holds it: a float, or None when it is not finite."""
    number = float(value)
    return number if math.isfinite(number) else None


def _rescore_of(rescore: Rescore | None, i: int) -> dict[str, Any] | None:
    """Image ``i``'s scores from the final scoring in another runtime, as its record holds them."""
    if rescore is None:
        return None
    l2 = rescore.scores.get("L2")
    return {
        "runtime": rescore.runtime,
        "total": _finite(rescore.scores["TOTAL"][i]),
        "l2": None if l2 is None else _finite(l2[i]),
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _Job:
    """One run of ``upsample_folder``: its paths, report and the searches of its batches."""

    def __init__(
        self,
        generator: Generator,
        output_dir: Path,
        options: SearchOptions,
        *,
        save_latent: bool,
        niqe: bool,
        shard: Shard | None,
        listener: Listener,
    ) -> None:
        self.generator = generator
        self.output_dir = output_dir
        self.options = options
        self.save_latent = save_latent
        self.niqe = niqe and generator.resolution >= NIQE_MIN_SIDE
        self.listener = listener
        suffix = _shard_suffix(shard)
        self.report = UpsampleReport(
            output_dir=output_dir,
            model={"name": generator.name, "resolution": generator.resolution, "source": generator.source},
            options=options.to_dict(),
            shard=None if shard is None else str(shard),
            report_path=output_dir / f"report{suffix}.json",
        )
        self.sheet_path = output_dir / f"contact_sheet{suffix}.png"
        self.previous = _previous_records(self.report.report_path)

    def record(self, name: str, path: Path, status: str, save: bool = True, **values: Any) -> None:
        """Add one image's outcome to the report (saved unless ``save`` is False) and announce it."""
        record = ImageRecord(
            name=name, input=str(path), status=status, model=self.generator.name, options=self.report.options,
            **values,
        )
        self.add(record, save)

    def add(self, record: ImageRecord, save: bool = True) -> None:
        self.report.images.append(record)
        if save:
            self.report.save()
        self.listener.image_finished(record)

    def output_path(self, name: str) -> Path:
        return self.output_dir / f"{name}.png"

    def skip(self, item: Item) -> None:
        """Record an image whose output exists, with its earlier record when the report has one."""
        previous = self.previous.get(item.name)
        if previous is not None:
            self.add(ImageRecord(**{**previous, "status": "skipped"}), save=False)
        else:
            self.record(item.name, item.path, "skipped", save=False, output=self.output_path(item.name).name)

    def batches(self, items: Sequence[Item]) -> Iterator[tuple[list[Item], np.ndarray]]:
        """Loaded inputs grouped into batches of one size each; unreadable inputs are recorded."""
        pending: list[tuple[Item, np.ndarray]] = []
        refused: set[Path] = set()
        for item in items:
            if item.path in refused:
                continue
            try:
                image = load_input(item.path, self.generator.resolution)
            except InputImageError as exc:
                refused.add(item.path)  # one record per input, named for it, however many duplicates
                self.record(item.path.name, item.path, "failed", error=str(exc))
                continue
            if pending and pending[0][1].shape != image.shape:
                yield [i for i, _ in pending], np.stack([im for _, im in pending])
                pending = []
            pending.append((item, image))
            if len(pending) == self.options.batch_size:
                yield [i for i, _ in pending], np.stack([im for _, im in pending])
                pending = []
        if pending:
            yield [i for i, _ in pending], np.stack([im for _, im in pending])

    def save_intermediate(self, names: Sequence[str]) -> Callable[[StepReport], None]:
        """An ``on_step`` hook writing each step's HR and LR images as PULSE's run.py names them."""
        digits = step_digits(self.options.steps)
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

    def run_batch(self, items: list[Item], refs: np.ndarray) -> None:
        names = [item.name for item in items]
        seed = batch_seed(self.options.seed, names)
        self.listener.batch_started(names)
        hooks: list[Callable[[StepReport], None]] = [self.listener.step]
        if self.options.save_intermediate:
            hooks.append(self.save_intermediate(names))

        def on_step(report: StepReport) -> None:
            for hook in hooks:
                hook(report)

        try:
            result = search(self.generator, refs, self.options.with_(seed=seed), on_step=on_step)
        except Exception as exc:  # one batch's failure is recorded; the job goes on
            error = f"search failed: {_first_line(exc)}"
            for item in items:
                self.record(item.name, item.path, "failed", seed=seed, error=error)
            return
        self.report.roles = result.roles
        for i, item in enumerate(items):
            self.finish(item, i, result, seed)

    def finish(self, item: Item, i: int, result: SearchResult, seed: int) -> None:
        """Write one searched image's outputs and record it."""
        common = {
            "seed": seed,
            "steps_run": result.steps_run,
            "seconds": result.seconds / len(result.best_l2),
            "best_step": int(result.best_step[i]) if result.best_step[i] >= 0 else None,
            "l2": _finite(result.best_l2[i]),
            "total": _finite(result.best_total[i]),
        }
        error = result.errors[i] if result.errors else None
        if error is not None:
            self.record(item.name, item.path, "failed", eps_met=False, error=error, **common)
            return
        latent = self.write_latent(item.name, i, result) if self.save_latent else None
        output = self.output_path(item.name)
        atomic_save_image(to_pil(result.best_image[i]), output)
        niqe = self.niqe_of(output) if self.niqe else None
        self.record(
            item.name, item.path, "ok", output=output.name, eps_met=bool(result.eps_met[i]),
            rescore=_rescore_of(result.rescore, i), niqe=niqe, latent=latent, **common,
        )

    def write_latent(self, name: str, i: int, result: SearchResult) -> str:
        """Write image ``i``'s best latent and noise maps as ``{name}.npz`` (``latent`` [1 or L, D],
        ``noise_{k}`` [1, r, r] for each noise layer), from which its output can be made again."""
        path = self.output_dir / f"{name}.npz"
        arrays = {"latent": result.best_latent[i]}
        arrays.update({f"noise_{k}": noise[i] for k, noise in enumerate(result.best_noise)})
        with atomic_write(path, "wb") as file:
            np.savez_compressed(file, **arrays)
        return path.name

    @staticmethod
    def niqe_of(output: Path) -> float | None:
        """The output's NIQE (standard MATLAB variant), or None when it cannot be scored."""
        from pulse_cli.niqe import NiqeError, niqe

        try:
            score = float(niqe(output))
        except NiqeError:
            return None
        return score if math.isfinite(score) else None


def sheet_columns(report: UpsampleReport, resolution: int, limit: int = SHEET_COLUMNS) -> list[SheetColumn]:
    """Contact-sheet columns for the first ``limit`` images of ``report`` that have an output."""
    columns = []
    for record in report.images:
        if record.status == "failed" or record.output is None:
            continue
        output = report.output_dir / record.output
        try:
            lr = load_input(record.input, resolution)
            hr = read_image(output)
        except InputImageError:
            continue
        columns.append(SheetColumn(record.name, lr, hr, l2=record.l2, eps_met=record.eps_met))
        if len(columns) == limit:
            break
    return columns


def upsample_folder(
    generator: Generator,
    input_dir: str | Path,
    output_dir: str | Path,
    options: SearchOptions | None = None,
    *,
    overwrite: bool = False,
    save_latent: bool = False,
    niqe: bool = False,
    shard: Shard | None = None,
    listener: Listener | None = None,
    contact_sheet: bool = True,
) -> UpsampleReport:
    """Upsample every input of ``input_dir`` (or ``shard``'s slice of them) into ``output_dir``.

    Under ``paddle.distributed.launch`` the shard comes from the environment when none is given;
    a sharded job writes ``report_shard{K}of{N}.json`` and ``contact_sheet_shard{K}of{N}.png`` so
    workers sharing a folder never overwrite each other's. ``niqe`` scores each output with NIQE
    when the model's output is at least 192 px. On KeyboardInterrupt the report keeps every
    finished image and says it was interrupted, and the interrupt propagates.
    """
    options = options or SearchOptions()
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if output_dir.resolve() == input_dir.resolve():
        raise UpsampleError(f"output folder {output_dir} must differ from the input folder")
    inputs = list_inputs(input_dir)
    check_options(options)
    shard = shard or Shard.from_env()
    if shard is not None:
        inputs = shard.select(inputs)
    output_dir.mkdir(parents=True, exist_ok=True)
    job = _Job(
        generator, output_dir, options, save_latent=save_latent, niqe=niqe, shard=shard,
        listener=listener or Listener(),
    )
    items, refused = plan_items(inputs, options.duplicates)
    done = [item for item in items if not overwrite and job.output_path(item.name).is_file()]
    skipped = set(done)
    todo = [item for item in items if item not in skipped]
    job.listener.job_started(len(todo))
    try:
        for path, cause in refused:
            job.record(path.name, path, "failed", save=False, error=str(InputImageError(path, cause)))
        for item in done:
            job.skip(item)
        job.report.save()
        for batch, refs in job.batches(todo):
            job.run_batch(batch, refs)
    except KeyboardInterrupt:
        job.report.interrupted = True
        job.report.save()
        raise
    if contact_sheet and (columns := sheet_columns(job.report, generator.resolution)):
        save_contact_sheet(columns, job.sheet_path, generator.resolution)
        job.report.contact_sheet_path = job.sheet_path
    job.report.save()
    return job.report

