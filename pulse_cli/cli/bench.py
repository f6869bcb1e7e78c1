"""``pulse bench``: forward and search-step speed of each backend, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pulse_cli import allocator as allocator_modes
from pulse_cli.backends import backend_names
from pulse_cli.bench import ALLOCATOR_CHOICES
from pulse_cli.cli.app import app
from pulse_cli.cli.common import INTERRUPTED, Device, choices, device_option, err, error_line, fail, out
from pulse_cli.models.registry import DEFAULT_MODEL, ModelError, get_spec

ALL = "all"
BenchBackend = choices("BenchBackend", (*backend_names(), ALL))
EVERY_BACKEND = BenchBackend(ALL)
BenchAllocator = choices("BenchAllocator", ALLOCATOR_CHOICES)


def _ms(timing) -> str:
    if timing is None:
        return "—"
    digits = 0 if timing.median >= 0.1 else 1
    values = [f"{seconds * 1000:.{digits}f}" for seconds in (timing.median, timing.min, timing.max)]
    return f"{values[0]} [{values[1]}–{values[2]}]"


def _rss(row) -> str:
    if row.peak_rss_scope != "measurement" or row.rss_before_mib is None:
        return f"{row.peak_rss_mib:.0f} (process)"  # the high-water mark could not be reset
    return f"{row.peak_rss_mib:.0f} (+{row.peak_rss_mib - row.rss_before_mib:.0f})"


@app.command()
def bench(
    backend: Annotated[BenchBackend, typer.Option(help="One backend, or all of them.")] = EVERY_BACKEND,
    model: Annotated[str, typer.Option(help="Generator plugin (see `pulse models list`).")] = DEFAULT_MODEL,
    resolution: Annotated[
        int | None,
        typer.Option(help="Output side in pixels (StyleGAN: any power of two).", show_default="the model's"),
    ] = None,
    batch: Annotated[int, typer.Option(help="Images per forward pass and per search step.")] = 1,
    repeats: Annotated[int, typer.Option(help="Timed runs of each measurement (median, min, max).")] = 3,
    warmup: Annotated[int, typer.Option(help="Untimed runs first (compiling, exporting).")] = 1,
    weights: Annotated[Path | None, typer.Option(help="Real weights (default: random ones).")] = None,
    device: Annotated[Device | None, device_option("Device (default: Paddle's, GPU if any):")] = None,
    allocator: Annotated[
        BenchAllocator | None,
        typer.Option(
            help="glibc malloc tuned as pulse runs it, its default, or both (two rows per backend). "
            "Default: PULSE_ALLOCATOR, else tuned.",
            show_default=False,
        ),
    ] = None,
    face: Annotated[
        bool,
        typer.Option(
            help="Also time one face of the demo photo end to end (detection, alignment, the search "
            "with the default settings and backend, paste-back).",
        ),
    ] = True,
    face_steps: Annotated[
        int | None, typer.Option(help="The face's search steps.", show_default="the search's default")
    ] = None,
    niqe: Annotated[
        bool, typer.Option("--niqe", help="Also time NIQE (each variant and backend) on a 1024x1024 image.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Time each backend's forward pass and search step on MODEL.

    One row per backend: forward ms per image, search step (forward +
    backward + optimizer) ms per image where the backend has one, images per
    minute for a 100-step search, peak RSS during the measurement, setup
    time (compiling, exporting, warm-up runs). Each backend runs in its own
    process, Paddle and onnxruntime on the same device; warm-up runs are
    left out; figures are the median of the repeats with \\[min–max]. Random
    weights unless --weights is given. The lines under the table say which
    malloc setting and how many oneDNN threads each row ran with;
    --allocator both measures each backend with glibc's default malloc, then
    tuned.

    Then one face of the demo photo goes through what `pulse upsample`
    does with a photo, in a process of its own: seconds from the photo to
    the pasted-back face (the search's share, first-use compiling
    included, beside it) and peak RSS; --no-face leaves it out.

    With --niqe, a second table times NIQE (matlab and paddle-pulse, numpy
    and onnx) on a fixed 1024x1024 image.

    Example: pulse bench --backend all --model stylegan-ffhq --resolution 1024 --repeats 3
    """
    from pulse_cli.bench import NIQE_SIDE, BenchConfig, BenchError, measure_niqe, run_bench, run_face

    selected = list(backend_names()) if backend.value == ALL else [backend.value]
    if resolution is None:
        try:
            resolution = get_spec(model).resolution
        except ModelError as exc:
            fail(str(exc))
    mode = allocator.value if allocator is not None else allocator_modes.requested_mode()
    config = BenchConfig(
        model, resolution, batch, repeats, warmup, weights, device=device and str(device), allocator=mode,
        face_steps=face_steps,
    )  # fmt: skip
    try:
        rows = run_bench(config, selected)
        face_row = run_face(config) if face else None
        niqe_rows = measure_niqe(config) if niqe else []
    except BenchError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=INTERRUPTED)
    if as_json:
        data = {"config": {**vars(config), "weights": str(weights) if weights else None}}
        data["rows"] = [row.to_dict() for row in rows]
        if face_row is not None:
            data["face"] = face_row.to_dict()
        if niqe:
            data["niqe"] = {"side": NIQE_SIDE, "rows": [row.to_dict() for row in niqe_rows]}
        typer.echo(json.dumps(data))
    else:
        runs = f"median [min–max] of {repeats} runs"
        print_table(rows, f"{model} {resolution}x{resolution}, batch {batch}: {runs}")
        if face_row is not None:
            print_face_table(face_row, f"{model}: one face of the demo photo, end to end (one run)")
        if niqe:
            print_niqe_table(niqe_rows, f"NIQE of one {NIQE_SIDE}x{NIQE_SIDE} image: {runs}")
    failed = [(row.backend, row.error) for row in rows if row.error]
    failed += [("face", face_row.error)] if face_row is not None and face_row.error else []
    failed += [(f"NIQE {row.variant} {row.backend}", row.error) for row in niqe_rows if row.error]
    for what, error in failed:
        error_line(f"{what}: {error}")
    raise typer.Exit(1 if failed else 0)


def print_face_table(row, title: str) -> None:
    """The face's row as a rich table: seconds a face, the search's share, peak RSS."""
    columns = ("backend", "malloc", "threads", "steps", "s/face", "search s", "peak RSS MiB")
    table = Table(*columns, title=escape(title))
    if row.error:
        table.add_row("—", row.allocator or "—", "—", "—", "[red]failed[/]", "—", "—")
    else:
        cells = (
            row.backend, row.allocator, str(row.threads), str(row.steps), f"{row.seconds:.1f}",
            f"{row.search_seconds:.1f}", _rss(row),
        )  # fmt: skip
        table.add_row(*map(escape, cells))
    out.print(table)
    out.print(
        "s/face: from the photo to the pasted-back face (MTCNN detection, FFHQ alignment, the search "
        "with the default settings, paste-back, writing the files); search s: the search alone, "
        "first-use compiling included"
    )


def print_niqe_table(rows, title: str) -> None:
    """NIQE's rows as a rich table: ms per image and setup for each variant and backend."""
    table = Table("variant", "backend", "ms/img", "setup s", title=escape(title))
    for row in rows:
        if row.error:
            table.add_row(row.variant, row.backend, "[red]failed[/]", "—")
            continue
        table.add_row(row.variant, row.backend, escape(_ms(row.seconds)), f"{row.setup_seconds:.2f}")
    out.print(table)
    out.print("setup: the warm-up runs (onnx: exporting the graph unless cached, opening the session)")


def print_table(rows, title: str) -> None:
    """The rows as a rich table, then what ran where and the notes."""
    columns = ("backend", "malloc", "threads", "forward ms/img", "step ms/img", "img/min", "peak RSS MiB")
    columns += ("setup s",)
    table = Table(*columns, title=escape(title))
    for row in rows:
        if row.error:
            table.add_row(row.backend, row.allocator or "—", "—", "[red]failed[/]", *["—"] * 4)
            continue
        per_minute = "—" if row.images_per_minute is None else f"{row.images_per_minute:.3g}"
        cells = (
            row.allocator or "—",
            "—" if row.threads is None else str(row.threads),
            _ms(row.forward),
            _ms(row.step),
            per_minute,
            _rss(row),
            f"{row.setup_seconds:.1f}",
        )
        table.add_row(row.backend, *map(escape, cells))
    out.print(table)
    out.print("img/min: images per minute for a 100-step search; step: forward + backward + optimizer")
    out.print(
        "peak RSS: highest resident host memory while the backend was measured, in a process of its "
        "own (+N: above what was resident as the measurement began; process: the process's peak); "
        "setup: compiling, exporting, warm-up runs"
    )
    for setting in dict.fromkeys(row.allocator_setting for row in rows if row.allocator_setting):
        out.print(escape(f"malloc: {setting}"))
    for setting in dict.fromkeys(row.threads_setting for row in rows if row.threads_setting):
        out.print(escape(setting))
    for device in dict.fromkeys(row.device for row in rows if row.device):
        out.print(f"device: {escape(device)} (Paddle and onnxruntime)")
    roles = (
        f"{row.backend}: " + "; ".join(f"{role}: {runtime}" for role, runtime in row.runs_on.items())
        for row in rows
        if row.runs_on
    )
    for line in dict.fromkeys(roles):  # once per backend, however many allocator modes it ran under
        out.print(escape(line))
    for note in dict.fromkeys(note for row in rows for note in row.notes):
        err.print(f"note: {escape(note)}")
