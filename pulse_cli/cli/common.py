"""What every ``pulse`` command shares beyond printing and exit codes (``console``): which
device Paddle uses, how a model is loaded, how an upsampling job runs with its progress bar, and
the line saying which runtime did what."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pulse_cli.backends import backend_names
from pulse_cli.cli.console import err, error_line, fail, out
from pulse_cli.devices import Device, DeviceError, check_device
from pulse_cli.errors import INTERRUPTED, INTERRUPTED_MESSAGE
from pulse_cli.graphs.generator import Generator
from pulse_cli.models.registry import ModelError, load_generator
from pulse_cli.search import StepReport
from pulse_cli.upsample import ImageRecord, Listener, UpsampleError, UpsampleReport


def interrupted() -> NoReturn:
    """Ctrl-C: the interrupt line, and exit 130 (Typer alone would exit 130 saying nothing)."""
    fail(INTERRUPTED_MESSAGE, INTERRUPTED)


def use_device(device: Device | None) -> None:
    """Point Paddle at ``device`` (``cpu``, ``gpu``, ``gpu:N``); onnxruntime then runs on the same
    one (``export.onnx.providers``). A clear error when this Paddle has no such GPU.

    ``None`` leaves Paddle's default (the GPU when Paddle was built with CUDA and sees one).
    """
    if device is None:
        return
    import paddle

    try:
        check_device(device)
    except DeviceError as exc:
        fail(str(exc))
    paddle.set_device(str(device))


def device_option(help: str, panel: str | None = None) -> Any:
    """A ``--device`` option (in the help panel ``panel``): ``cpu``, ``gpu`` or ``gpu:N``, parsed
    into a ``Device``."""
    return typer.Option(
        help=f"{help} cpu, gpu or gpu:N (Paddle and onnxruntime both run there).",
        parser=Device.parse,
        metavar="DEVICE",
        rich_help_panel=panel,
    )


def choices(name: str, values: Sequence[str]) -> Any:
    """A string Enum of ``values``, which Typer shows and checks as the option's choices."""
    return Enum(name, {value: value for value in values}, type=str)


BackendChoice = choices("Backend", backend_names())  # the registry's, plugins' included


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
        note = f" [dim]({escape(record.note)})[/]" if record.note else ""
        searched = "" if record.search_l2 is None else f", {_l2(record.search_l2)} before consistency"
        self.progress.console.print(
            f"{escape(record.name)}: L2 {_l2(record.l2)} ({met}{searched}), best step {record.best_step}, "
            f"{record.seconds:.1f} s{note}"
        )

    def photo_pasted(self, output: str, names: Sequence[str]) -> None:
        pasted = f"{output}: {len(names)} face(s) pasted back ({', '.join(names)})"
        self.progress.console.print(escape(pasted))

    def note(self, text: str) -> None:
        self.progress.console.print(f"[dim]note: {escape(text)}[/]")


def _l2(value: float) -> str:
    """An L2 as the progress output prints it: four decimals, like eps, or two digits when smaller
    (a consistent face's L2 is 1e-5, not 0.0000)."""
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"


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
    sheets = [str(path) for path in report.contact_sheet_paths]
    data["contact_sheet"] = sheets[0] if sheets else None
    data["contact_sheets"] = sheets
    return json.dumps(data)


def roles_line(roles: dict[str, str]) -> str:
    """Which runtime did what, on one line: ``gradient steps: Paddle dygraph; forward-only …``."""
    return "; ".join(f"{what}: {runtime}" for what, runtime in roles.items())


def print_summary(report: UpsampleReport) -> None:
    for name in report.ignored:
        err.print(escape(f"note: {name} is not an image: left out"))
    counts = report.summary()
    ignored = f", {counts['ignored']} not images (left out)" if counts["ignored"] else ""
    out.print(
        f"{counts['ok']} upsampled ({counts['eps_met']} met eps), {counts['skipped']} skipped "
        f"(output exists), {counts['failed']} failed{ignored}"
    )
    if report.roles:
        out.print(escape(f"backend {report.options['backend']}: {roles_line(report.roles)}"))
    out.print(f"report: {escape(str(report.report_path))}")
    sheets = report.contact_sheet_paths
    if len(sheets) == 1:
        out.print(f"contact sheet: {escape(str(sheets[0]))}")
    elif sheets:
        pages = f"{escape(str(sheets[0]))} … {escape(sheets[-1].name)}"
        out.print(f"contact sheets: {pages} ({len(sheets)} pages)")


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
                if progress.live.is_started:  # stopping a bar never shown prints an empty line
                    progress.stop()
    except UpsampleError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        interrupted()
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
    except KeyboardInterrupt:
        interrupted()
