"""``pulse export``: a model's synthesis, bicubic downscale and scorer as Paddle static graphs and ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pulse_cli.cli.app import app
from pulse_cli.cli.common import INTERRUPTED, Device, err, fail, get_generator, out, use_device
from pulse_cli.models.registry import DEFAULT_MODEL
from pulse_cli.options import SearchOptions

DEFAULTS = SearchOptions()


@app.command()
def export(
    output_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the graphs into.")],
    model: Annotated[str, typer.Option(help="Generator plugin (see `pulse models list`).")] = DEFAULT_MODEL,
    weights: Annotated[Path | None, typer.Option(help="Weights file or folder for the model.")] = None,
    gaussian_fit: Annotated[
        Path | None, typer.Option(help="StyleGAN gaussian fit (gaussian_fit.pt).")
    ] = None,
    resolution_lr: Annotated[
        int | None, typer.Option(help="Side of the low-resolution input (default: 32, or R/4 below 128 px).")
    ] = None,
    loss_str: Annotated[str, typer.Option(help="Weighted loss terms of the scorer.")] = DEFAULTS.loss_str,
    eps: Annotated[float, typer.Option(help="Floor of the scorer's image terms.")] = DEFAULTS.eps,
    opset: Annotated[int, typer.Option(help="ONNX opset (13 or newer).")] = 17,
    check_batch: Annotated[int, typer.Option(help="Batch size of the parity checks.")] = 2,
) -> None:
    """Export MODEL's synthesis, bicubic downscale and scorer graphs.

    Each graph is written as a Paddle static graph (.json + .pdiparams) and as
    ONNX (dynamic batch), run in paddle.jit.load, Paddle Inference and
    onnxruntime against eager Paddle on random inputs, and only then listed
    in manifest.json with its files' SHA-256. A failed or interrupted export
    leaves OUTPUT_DIR as it was.

    Example: pulse export --model stylegan-ffhq --weights ffhq/ -o exported/
    """
    from pulse_cli import plugins
    from pulse_cli.export import ExportError
    from pulse_cli.export.bundle import export_model
    from pulse_cli.graphs.losses import parse_loss_str

    try:
        options = DEFAULTS.with_(loss_str=loss_str, eps=eps)
        parse_loss_str(loss_str, plugins.available("losses"))  # before any model download
    except ValueError as exc:
        fail(str(exc))
    use_device(Device("cpu"))
    generator = get_generator(model, weights, gaussian_fit)
    try:
        result = export_model(
            generator, output_dir, resolution_lr=resolution_lr, options=options, opset=opset,
            check_batch=check_batch, on_progress=lambda message: err.print(escape(message)),
        )  # fmt: skip
    except ExportError as exc:
        fail(str(exc), code=1)
    except KeyboardInterrupt:
        fail(f"interrupted: {output_dir} was left as it was", code=INTERRUPTED)
    table = Table("graph", "runtime", "max abs error", "relative", "check", title=f"{escape(model)} exported")
    for check in result.checks:
        verdict = "[green]ok[/]" if check.passed else "[red]failed[/]"
        table.add_row(
            check.graph, check.runtime, f"{check.max_abs_error:.3g}", f"{check.max_rel_error:.3g}", verdict
        )
    out.print(table)
    out.print(f"{len(result.manifest['files'])} files and manifest.json in {escape(str(result.folder))}")
