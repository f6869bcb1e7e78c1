"""``pulse upsample``: every option of PULSE's run.py, a progress bar, a report and exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pulse_cli.cli.app import app
from pulse_cli.cli.console import err, error_line, fail, out, use_device
from pulse_cli.models.generator import Generator
from pulse_cli.models.registry import DEFAULT_MODEL, ModelError, load_generator
from pulse_cli.options import BACKENDS, LR_SCHEDULES, NOISE_TYPES, SearchOptions
from pulse_cli.search import StepReport
from pulse_cli.upsample import (
    NIQE_MIN_SIDE,
    ImageRecord,
    Listener,
    Shard,
    UpsampleError,
    UpsampleReport,
    check_options,
    list_inputs,
    upsample_folder,
)

DEFAULTS = SearchOptions()
INTERRUPTED = 130
SEARCH = "Search (PULSE's run.py)"
MODEL = "Model and device"
OUTPUT = "Output"


def choices(name: str, values: Sequence[str]) -> Any:
    """A string Enum of ``values``, which Typer shows and checks as the option's choices."""
    return Enum(name, {value: value for value in values}, type=str)


Device = choices("Device", ("cpu", "gpu"))
NoiseType = choices("NoiseType", NOISE_TYPES)
LrSchedule = choices("LrSchedule", LR_SCHEDULES)
Backend = choices("Backend", BACKENDS)


class ProgressListener(Listener):
    """One rich progress bar over images, showing the current image's step, L2 and the ETA.

    Each finished image gets one line; a failed one gets one error line on stderr.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("", total=None)
        self.finished = 0
        self.batch: Sequence[str] = ()

    def job_started(self, total: int) -> None:
        self.progress.update(self.task, total=total)
        self.progress.start()  # only once the job is under way: a usage error shows no bar

    def batch_started(self, names: Sequence[str]) -> None:
        self.batch = names
        self.progress.update(self.task, description=escape(self._label()))

    def _label(self) -> str:
        return self.batch[0] if len(self.batch) == 1 else f"{self.batch[0]} +{len(self.batch) - 1}"

    def step(self, report: StepReport) -> None:
        l2 = "" if report.l2 is None else f"  L2 {float(report.l2.min()):.4f}"
        done = self.finished + len(self.batch) * (report.step + 1) / report.steps
        self.progress.update(
            self.task,
            completed=done,
            description=escape(f"{self._label()}  step {report.step + 1}/{report.steps}{l2}"),
        )

    def image_finished(self, record: ImageRecord) -> None:
        if record.status == "skipped":
            return
        self.finished += 1
        self.progress.update(self.task, completed=self.finished)
        if record.status == "failed":
            error_line(record.error or "failed")
            return
        met = "[green]eps met[/]" if record.eps_met else "[yellow]eps not met[/]"
        self.progress.console.print(
            f"{escape(record.name)}: L2 {record.l2:.4f} ({met}), best step {record.best_step}, "
            f"{record.seconds:.1f} s"
        )


def make_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def summary_json(report: UpsampleReport) -> str:
    """The one machine-readable summary ``--json`` prints: the report plus where its files are."""
    data: dict[str, Any] = report.to_dict()
    data["report"] = str(report.report_path) if report.report_path else None
    data["contact_sheet"] = str(report.contact_sheet_path) if report.contact_sheet_path else None
    return json.dumps(data)


def roles_line(roles: dict[str, str]) -> str:
    """Which runtime did what, on one line: ``gradient steps: Paddle dygraph; forward-only …``."""
    return "; ".join(f"{what}: {runtime}" for what, runtime in roles.items())


def print_summary(report: UpsampleReport) -> None:
    counts = report.summary()
    out.print(
        f"{counts['ok']} upsampled ({counts['eps_met']} met eps), {counts['skipped']} skipped "
        f"(output exists), {counts['failed']} failed"
    )
    if report.roles:
        out.print(escape(f"backend {report.options['backend']}: {roles_line(report.roles)}"))
    out.print(f"report: {escape(str(report.report_path))}")
    if report.contact_sheet_path:
        out.print(f"contact sheet: {escape(str(report.contact_sheet_path))}")


def run_job(
    job: Callable[[Listener], UpsampleReport],
    as_json: bool,
) -> UpsampleReport:
    """Run an upsampling job with the progress bar (or silently for ``--json``), mapping its
    errors to one line and exit code 2, and Ctrl-C to exit code 130."""
    try:
        if as_json:
            report = job(JsonListener())
        else:
            progress = make_progress()
            try:
                report = job(ProgressListener(progress))
            finally:
                progress.stop()
    except UpsampleError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        error_line("interrupted: finished images and the report of them are kept; run again to resume")
        raise typer.Exit(INTERRUPTED) from None
    if as_json:
        typer.echo(summary_json(report))
    else:
        print_summary(report)
    return report


class JsonListener(Listener):
    """No progress output; each failed image still gets its one error line on stderr."""

    def image_finished(self, record: ImageRecord) -> None:
        if record.status == "failed":
            error_line(record.error or "failed")


def get_generator(model: str, weights: Path | None, gaussian_fit: Path | None) -> Generator:
    """The generator, or exit 2 with what is missing."""
    try:
        return load_generator(model, weights=weights, gaussian_fit=gaussian_fit)
    except ModelError as exc:
        fail(str(exc))


def _option(panel: str, help: str, *names: str, **extra: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=panel, **extra)


DEFAULT_NOISE_TYPE = NoiseType(DEFAULTS.noise_type)
DEFAULT_LR_SCHEDULE = LrSchedule(DEFAULTS.lr_schedule)
DEFAULT_BACKEND = Backend(DEFAULTS.backend)
SHARD_HELP = (
    "Process only slice K (from 0) of N of the sorted inputs, e.g. 0/4 (default: from "
    "PADDLE_TRAINER_ID/PADDLE_TRAINERS_NUM under paddle.distributed.launch)."
)


@app.command()
def upsample(
    input_dir: Annotated[Path, typer.Argument(help="Folder of low-resolution square faces.")],
    output_dir: Annotated[Path, typer.Option("--output", "-o", help="Where outputs and report.json go.")],
    model: Annotated[str, _option(MODEL, "Generator plugin (see `pulse models list`).")] = DEFAULT_MODEL,
    weights: Annotated[Path | None, _option(MODEL, "Weights file or folder for the model.")] = None,
    gaussian_fit: Annotated[Path | None, _option(MODEL, "StyleGAN gaussian fit (gaussian_fit.pt).")] = None,
    device: Annotated[Device | None, _option(MODEL, "Paddle device (default: Paddle's, GPU if any).")] = None,
    backend: Annotated[Backend, _option(MODEL, "How the forward pass runs.")] = DEFAULT_BACKEND,
    steps: Annotated[int, _option(SEARCH, "Optimization steps.")] = DEFAULTS.steps,
    eps: Annotated[float, _option(SEARCH, "Target for the downscaling loss (L2).")] = DEFAULTS.eps,
    seed: Annotated[int | None, _option(SEARCH, "Seed for reproducible runs.")] = DEFAULTS.seed,
    loss_str: Annotated[str, _option(SEARCH, "Weighted loss terms.")] = DEFAULTS.loss_str,
    noise_type: Annotated[NoiseType, _option(SEARCH, "StyleGAN noise inputs.")] = DEFAULT_NOISE_TYPE,
    num_trainable_noise_layers: Annotated[
        int, _option(SEARCH, "Noise layers optimized with --noise-type trainable.")
    ] = DEFAULTS.num_trainable_noise_layers,
    tile_latent: Annotated[
        bool, _option(SEARCH, "One latent vector for every layer.", "--tile-latent")
    ] = DEFAULTS.tile_latent,
    bad_noise_layers: Annotated[
        str | None, _option(SEARCH, "Dot-separated noise layers held at zero (default: the last).")
    ] = DEFAULTS.bad_noise_layers,
    opt_name: Annotated[str, _option(SEARCH, "Optimizer: sgd, adam, sgdm, adamax.")] = DEFAULTS.opt_name,
    learning_rate: Annotated[float, _option(SEARCH, "Learning rate.")] = DEFAULTS.learning_rate,
    lr_schedule: Annotated[LrSchedule, _option(SEARCH, "Learning-rate schedule.")] = DEFAULT_LR_SCHEDULE,
    batch_size: Annotated[int, _option(SEARCH, "Images searched together.")] = DEFAULTS.batch_size,
    duplicates: Annotated[int, _option(SEARCH, "Outputs per input, named {stem}_{k}.")] = DEFAULTS.duplicates,
    starts: Annotated[
        int, _option(SEARCH, "Random starting points scored; the search starts from the best.")
    ] = DEFAULTS.starts,
    early_stop: Annotated[
        bool, _option(SEARCH, "Stop once every image of a batch meets eps.", "--early-stop")
    ] = DEFAULTS.early_stop,
    save_intermediate: Annotated[
        bool, _option(OUTPUT, "Keep every step's images in {stem}/HR and {stem}/LR.", "--save-intermediate")
    ] = DEFAULTS.save_intermediate,
    save_latent: Annotated[
        bool, _option(OUTPUT, "Keep each output's latent and noise maps as {stem}.npz.", "--save-latent")
    ] = False,
    niqe: Annotated[bool, _option(OUTPUT, "Score outputs of 192 px and more with NIQE.", "--niqe")] = False,
    overwrite: Annotated[
        bool, _option(OUTPUT, "Redo images whose output exists (default: skip them: resume).", "--overwrite")
    ] = False,
    shard: Annotated[str | None, _option(OUTPUT, SHARD_HELP, show_default=False)] = None,
    as_json: Annotated[bool, _option(OUTPUT, "Print one JSON summary, no progress.", "--json")] = False,
) -> None:
    """Upsample every face in INPUT_DIR with PULSE into OUTPUT_DIR.

    Inputs: square PNG, JPEG, BMP or WebP images whose side divides the
    model's resolution by a power of two (8, 16 or 32 px for the default
    64 px model). Writes {stem}.png per input, report.json and
    contact_sheet.png; existing outputs are skipped, so a rerun resumes.
    Exit code 0 when every image worked, 1 when any failed, 2 for usage
    or model errors.

    Example: pulse upsample faces/ -o out/ --steps 100 --seed 1
    """
    try:
        options = SearchOptions(
            seed=seed, loss_str=loss_str, eps=eps, noise_type=noise_type.value,
            num_trainable_noise_layers=num_trainable_noise_layers, tile_latent=tile_latent,
            bad_noise_layers=bad_noise_layers, opt_name=opt_name, learning_rate=learning_rate, steps=steps,
            lr_schedule=lr_schedule.value, save_intermediate=save_intermediate, batch_size=batch_size,
            duplicates=duplicates, early_stop=early_stop, backend=backend.value, starts=starts,
        )
        chosen_shard = Shard.parse(shard) if shard is not None else None
        list_inputs(input_dir)  # fail fast, before any model download
        check_options(options)
    except ValueError as exc:
        fail(str(exc))
    use_device(device.value if device else None)
    generator = get_generator(model, weights, gaussian_fit)
    if niqe and generator.resolution < NIQE_MIN_SIDE:
        err.print(f"note: no NIQE: it needs outputs of {NIQE_MIN_SIDE} px or more, {model} makes "
                  f"{generator.resolution} px")

    def job(listener: Listener) -> UpsampleReport:
        return upsample_folder(
            generator, input_dir, output_dir, options, overwrite=overwrite, save_latent=save_latent,
            niqe=niqe, shard=chosen_shard, listener=listener,
        )

    report = run_job(job, as_json)
    raise typer.Exit(1 if report.failed else 0)
