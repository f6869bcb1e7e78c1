"""Upsampling a folder: the batch job behind ``pulse upsample``, as a library call.

``upsample_folder(generator, input_dir, output_dir, options)`` searches every input (or one shard
of them) and writes, as PULSE's run.py names them, ``{stem}.png`` (``{stem}_{k}.png`` with
duplicates), ``{stem}/HR/{stem}_{step}.png`` and ``{stem}/LR/…`` with ``save_intermediate``, and
``{stem}.npz`` (the best image's latent and noise maps) with ``save_latent``; plus ``report.json``,
rewritten as each image finishes, and ``contact_sheet.png``. Photos (inputs that are not aligned
face crops) get one output per face: ``faces/{stem}_{k}.png`` (the aligned crop searched),
``upsampled/{stem}_{k}.png`` and ``photos/{stem}.png`` (the photo with its faces pasted back).
Every file is written atomically. An input that fails is recorded with its error and the job goes
on; existing outputs are skipped unless ``overwrite``.

The package's modules are the job's parts: ``plan`` (inputs, output names, shards, resume),
``inputs`` (what each input is: an aligned crop, or a photo and its faces), ``run`` (batches and
their searches), ``write`` (the files), ``photos`` (faces pasted back) and ``report``
(report.json's schema and the progress hooks), strung together by ``job``.
"""

from pulse_cli.upsample.folder import FolderLock, prepare_output_dir
from pulse_cli.upsample.inputs import Crop, FaceOptions, default_input_size
from pulse_cli.upsample.job import Job, upsample_folder
from pulse_cli.upsample.plan import (
    Item,
    Plan,
    Shard,
    UpsampleError,
    check_options,
    image_seed,
    list_inputs,
    make_plan,
    plan_items,
)
from pulse_cli.upsample.report import ImageRecord, Listener, UpsampleReport
from pulse_cli.upsample.write import NIQE_MIN_SIDE, OutputWriter, sheet_columns, step_digits

__all__ = [
    "NIQE_MIN_SIDE", "Crop", "FaceOptions", "FolderLock", "ImageRecord", "Item", "Job", "Listener",
    "OutputWriter", "Plan", "Shard", "UpsampleError", "UpsampleReport", "check_options",
    "default_input_size", "image_seed", "list_inputs", "make_plan", "plan_items", "prepare_output_dir",
    "sheet_columns", "step_digits", "upsample_folder",
]
