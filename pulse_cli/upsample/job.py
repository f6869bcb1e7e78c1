"""One ``upsample_folder`` job: plan it, run its batches, write and record each output.

The parts are each their own module: ``plan`` (inputs, names, shard, resume), ``inputs`` (what
each input is: aligned crop or photo), ``folder`` (the output folder: writable, locked), ``run``
(loading and searching batches), ``write`` (files), ``photos`` (pasting faces back) and ``report``
(report.json and progress hooks); this module only strings them together.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pulse_cli.backends import get_backend
from pulse_cli.faces.detect import Detector
from pulse_cli.faces.identity import IdentityScorer, IdentityUnavailable, held_face, identity_scorer
from pulse_cli.graphs.generator import Generator
from pulse_cli.graphs.op import library
from pulse_cli.images import InputImageError, read_image
from pulse_cli.options import SearchOptions
from pulse_cli.search import SearchResult
from pulse_cli.strategies import resolved_options
from pulse_cli.upsample.folder import FolderLock, prepare_output_dir
from pulse_cli.upsample.inputs import FaceOptions, InputReader
from pulse_cli.upsample.photos import PhotoPaster
from pulse_cli.upsample.plan import Item, Plan, Shard, UpsampleError, make_plan
from pulse_cli.upsample.report import (
    ImageRecord,
    Listener,
    UpsampleReport,
    finite,
    previous_records,
    rescore_of,
)
from pulse_cli.upsample.resume import differences, input_digest
from pulse_cli.upsample.run import load_batches, search_batch
from pulse_cli.upsample.write import NIQE_MIN_SIDE, OutputWriter, save_contact_sheets


def model_of(generator: Generator) -> dict[str, Any]:
    """The model as report.json describes it (and a rerun compares it): name, resolution, source."""
    return {"name": generator.name, "resolution": generator.resolution, "source": generator.source}


class Job:
    """A planned job's report, writer and listener: records each image's outcome as it comes.

    ``recorded`` is what report.json records as the options (the search options and the face
    options that shape a crop; see ``resume``). ``identity``, when given, scores each output
    against its face in the input (``pulse_cli.faces.identity``)."""

    def __init__(
        self,
        generator: Generator,
        output_dir: Path,
        options: SearchOptions,
        plan: Plan,
        writer: OutputWriter,
        listener: Listener,
        paster: PhotoPaster | None,
        recorded: dict[str, Any],
        identity: IdentityScorer | None = None,
    ) -> None:
        self.generator = generator
        self.identity = identity
        self.options = options
        self.plan = plan
        self.writer = writer
        self.listener = listener
        self.paster = paster
        self.report = UpsampleReport(
            output_dir=output_dir,
            model=model_of(generator),
            options=recorded,
            shard=None if plan.shard is None else str(plan.shard),
            report_path=plan.report_path,
            ignored=[path.name for path in plan.ignored],
        )
        self.previous = previous_records(plan.report_path)

    def record(self, name: str, path: Path, status: str, save: bool = True, **values: Any) -> None:
        """Add one image's outcome to the report (saved unless ``save`` is False) and announce it."""
        record = ImageRecord(
            name=name, input=str(path), status=status, model=self.generator.name, options=self.report.options,
            input_sha256=input_digest(path), **values,
        )
        self.add(record, save)

    def record_item(self, item: Item, status: str, save: bool = True, **values: Any) -> None:
        """``record`` for a planned item: with its crop, face and note when it has them."""
        crop = item.crop
        if crop is not None:
            values = {"crop": crop.file, "note": crop.note, **values}
            if crop.found is not None:
                values["face"] = crop.found.to_json(item.path)
        self.record(item.name, item.path, status, save, **values)

    def add(self, record: ImageRecord, save: bool = True) -> None:
        self.report.images.append(record)
        if save:
            self.report.save()
        self.listener.image_finished(record)
        photo = self.paster.finished(record.name) if self.paster else None
        if photo is not None:
            self.paste(photo)

    def paste(self, photo: str) -> None:
        """Paste a photo whose faces are all finished, and name it in its faces' records."""
        try:
            pasted = self.paster.paste(photo)
        except InputImageError as exc:
            self.refuse(exc.path, str(exc))
            return
        if pasted is None:
            return
        output, names = pasted
        for record in self.report.images:
            if record.name in names:
                record.photo = output
        self.report.save()
        self.listener.photo_pasted(output, names)

    def skip(self, item: Item) -> None:
        """Record an image whose output exists, with its earlier record when the report has one."""
        previous = self.previous.get(item.name)
        if previous is not None:
            self.add(ImageRecord(**{**previous, "status": "skipped"}), save=False)
        else:
            self.record_item(item, "skipped", save=False, output=item.output)

    def refuse(self, path: Path, error: str) -> None:
        """Record an input that cannot be read: one record, named for the input file."""
        self.record(path.name, path, "failed", error=error)

    def run(self, contact_sheet: bool = True) -> UpsampleReport:
        """Record the refused and finished inputs, search the rest batch by batch, and draw the
        contact sheet; on KeyboardInterrupt the report says so and the interrupt propagates."""
        plan, report, resolution = self.plan, self.report, self.generator.resolution
        self.listener.job_started(len(plan.todo) + len(plan.refused))  # refused inputs are reported too
        first_use = getattr(get_backend(self.options.backend), "first_use", "")
        if first_use and plan.todo:
            self.listener.note(f"backend {self.options.backend}: {first_use}")
        if plan.todo and self.generator.capabilities.compiled_ops and library.build_pending():
            self.listener.note(f"compiled ops: {library.FIRST_BUILD}")
        try:
            for path, cause in plan.refused:
                self.record(path.name, path, "failed", save=False, error=str(InputImageError(path, cause)))
            for item in plan.done:
                self.skip(item)
            report.save()
            for crop in {item.crop.file: item.crop for item in plan.todo if item.crop is not None}.values():
                self.writer.write_crop(crop)
            for photo in self.paster.ready() if self.paster else ():
                self.paste(photo)
            for batch, refs in load_batches(plan.todo, resolution, self.options.batch_size, self.refuse):
                self.run_batch(batch, refs)
        except KeyboardInterrupt:
            report.interrupted = True
            report.save()
            raise
        if contact_sheet:
            report.contact_sheet_paths = save_contact_sheets(report, resolution, plan.sheet_path)
        report.save()
        return report

    def run_batch(self, items: list[Item], refs: np.ndarray) -> None:
        """Search one batch and write and record each of its images."""
        names = [item.name for item in items]
        self.listener.batch_started(names)
        hooks = [self.listener.step]
        if self.options.save_intermediate:
            hooks.append(self.writer.intermediate(names, self.options.steps))
        outcome = search_batch(self.generator, items, refs, self.options, hooks)
        if outcome.result is None:
            for item, seed in zip(items, outcome.seeds):
                self.record_item(item, "failed", seed=seed, error=outcome.error)
            return
        self.report.roles = outcome.result.roles
        for i, (item, seed) in enumerate(zip(items, outcome.seeds)):
            self.finish(item, i, outcome.result, seed)

    def finish(self, item: Item, i: int, result: SearchResult, seed: int) -> None:
        """Write one searched image's outputs and record it."""
        common = {
            "seed": seed,
            "steps_run": result.steps_run,
            "seconds": result.seconds / len(result.best_l2),
            "best_step": int(result.best_step[i]) if result.best_step[i] >= 0 else None,
            "l2": finite(result.best_l2[i]),
            "search_l2": None if result.search_l2 is None else finite(result.search_l2[i]),
            "total": finite(result.best_total[i]),
        }
        error = result.errors[i] if result.errors else None
        if error is not None:
            self.record_item(item, "failed", eps_met=False, error=error, **common)
            return
        latent = self.writer.write_latent(item.name, i, result) if self.writer.save_latent else None
        output = self.writer.write_image(item.output, result.best_image[i])
        niqe = self.writer.niqe_of(output) if self.writer.niqe else None
        identity = None
        if self.identity is not None:
            identity = round(self.identity.distance(held_input(item), result.best_image[i]), 4)
        self.record_item(
            item, "ok", output=item.output, eps_met=bool(result.eps_met[i]),
            rescore=rescore_of(result.rescore, i), niqe=niqe, identity=identity, latent=latent, **common,
        )


def held_input(item: Item) -> np.ndarray:
    """An item's face as its input holds it, for ``--identity``: a photo's face cropped at the side
    it spans there, an aligned crop as given, a small input as it is."""
    if item.crop is not None and item.crop.found is not None:
        return held_face(read_image(item.path), item.crop.found.face.keypoints)
    return read_image(item.path)


def upsample_folder(
    generator: Generator,
    input_dir: str | Path,
    output_dir: str | Path,
    options: SearchOptions | None = None,
    *,
    overwrite: bool = False,
    save_latent: bool = False,
    niqe: bool = False,
    identity: bool = False,
    shard: Shard | None = None,
    listener: Listener | None = None,
    contact_sheet: bool = True,
    resume: bool = False,
    faces: FaceOptions | None = None,
    detector: Detector | Callable[[], Detector] | None = None,
) -> UpsampleReport:
    """Upsample every input of ``input_dir`` (or ``shard``'s slice of them) into ``output_dir``.

    Under ``paddle.distributed.launch`` the shard comes from the environment when none is given;
    a sharded job writes ``report_shard{K}of{N}.json`` and ``contact_sheet_shard{K}of{N}.png`` so
    workers sharing a folder never overwrite each other's. The job holds the folder's lock
    (``FolderLock``, one per shard) while it runs: a second job into the same folder (and shard)
    stops with ``UpsampleError`` naming the first. Outputs that exist are kept (skipped) when the
    report says they were made from the same inputs with the same model and options (see
    ``resume``'s module); otherwise ``UpsampleError`` says what differs, unless ``overwrite``
    (remake them) or ``resume`` (keep them anyway). ``niqe`` scores each output with NIQE
    when the model's output is at least 192 px; ``identity`` records dlib's distance between each
    output and its face in the input (``UpsampleError`` without dlib). On KeyboardInterrupt the
    report keeps every finished image and says it was interrupted, and the interrupt propagates.

    ``faces`` says how inputs are read (``FaceOptions``: aligned crops, photos, the input size, how
    photos are pasted back); a photo's faces are written as ``faces/{stem}_{k}.png`` (the crop
    searched), ``upsampled/{stem}_{k}.png`` and, pasted back, ``photos/{stem}.png``. ``detector``
    (a ``Detector`` or a function making one) is made from ``faces.weights`` when none is given,
    the first time a photo needs it.
    """
    # the layout and backend as chosen for this generator: what report.json records and a rerun compares
    options = resolved_options(generator, options or SearchOptions())
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    try:
        scorer = identity_scorer() if identity else None
    except IdentityUnavailable as exc:
        raise UpsampleError(str(exc)) from None
    if overwrite and resume:
        raise UpsampleError("overwrite remakes existing outputs and resume keeps them: choose one")
    try:
        reader = InputReader(generator.resolution, faces or FaceOptions(), detector)
    except ValueError as exc:
        raise UpsampleError(str(exc)) from None
    plan = make_plan(input_dir, output_dir, options, overwrite=overwrite, shard=shard, reader=reader)
    prepare_output_dir(output_dir)
    recorded = {**options.to_dict(), **reader.options.recorded(generator.resolution)}
    with FolderLock(plan.lock_path):
        if not resume:
            refuse_outputs_made_otherwise(plan, model_of(generator), recorded)
        writer = OutputWriter(
            output_dir, save_latent=save_latent, niqe=niqe and generator.resolution >= NIQE_MIN_SIDE
        )
        paster = PhotoPaster(output_dir, plan.todo, plan.done, reader.options.bg_scale)
        job = Job(
            generator, output_dir, options, plan, writer, listener or Listener(), paster, recorded, scorer
        )
        return job.run(contact_sheet)


def refuse_outputs_made_otherwise(plan: Plan, model: dict[str, Any], recorded: dict[str, Any]) -> None:
    """``UpsampleError`` when outputs the plan keeps were made with another model, other options
    (``recorded``: the search and face options) or other inputs, saying what differs."""
    made_otherwise, reasons = differences(plan.report_path, plan.done, model, recorded)
    if made_otherwise:
        raise UpsampleError(
            f"{len(made_otherwise)} of the outputs in {plan.report_path.parent} were made otherwise "
            f"({'; '.join(reasons)}): --overwrite remakes them, --resume keeps them"
        )
