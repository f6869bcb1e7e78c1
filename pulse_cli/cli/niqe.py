"""``pulse niqe``: the NIQE of image files and folders, as a table or as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pulse_cli.cli.app import app
from pulse_cli.cli.common import err, fail, out
from pulse_cli.niqe import BACKENDS, VARIANTS, NiqeError, NiqeTooSmall, niqe
from pulse_cli.niqe.variants import BLOCK

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass(frozen=True)
class Score:
    """One image's NIQE, or why it has none."""

    path: str
    value: float | None = None
    error: str | None = None
    too_small: bool = False  # fewer than two whole 96x96 blocks: said once for all such images


def image_files(paths: list[Path]) -> list[tuple[Path, str | None]]:
    """The images named by ``paths`` (a folder stands for its image files, sorted), each with a
    reason when it cannot even be tried (a missing path, a folder without images)."""
    found: list[tuple[Path, str | None]] = []
    for path in paths:
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            found += [(image, None) for image in images] or [(path, "folder holds no image files")]
        elif path.exists():
            found.append((path, None))
        else:
            found.append((path, "no such file or folder"))
    return found


def score_all(paths: list[Path], variant: str, backend: str) -> list[Score]:
    """NIQE of every image named by ``paths``; failures are recorded, not raised."""
    scores = []
    for path, reason in image_files(paths):
        if reason is not None:
            scores.append(Score(str(path), error=reason))
            continue
        try:
            scores.append(Score(str(path), value=niqe(path, variant=variant, backend=backend)))
        except NiqeTooSmall as error:
            small = f"too small: {error.width}x{error.height} px"
            scores.append(Score(str(path), error=small, too_small=True))
        except NiqeError as error:
            scores.append(Score(str(path), error=_reason(error, path)))
    return scores


def _reason(error: NiqeError, path: Path) -> str:
    """The error's message without the leading path, which the row already shows."""
    message = str(error)
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def mean_score(scores: list[Score]) -> float | None:
    """The mean NIQE over the images that have one."""
    values = [s.value for s in scores if s.value is not None]
    return math.fsum(values) / len(values) if values else None


def mean_label(scores: list[Score]) -> str:
    """What the mean covers: ``mean of 3 images``, or ``mean of 1 of 7 images`` when some have none."""
    scored = sum(s.value is not None for s in scores)
    if scored == len(scores):
        return f"mean of {scored} image{'s' if scored != 1 else ''}"
    return f"mean of {scored} of {len(scores)} images (the others have no score)"


def too_small_note(scores: list[Score]) -> str | None:
    """One line for every image too small for NIQE, or None when there is none."""
    count = sum(s.too_small for s in scores)
    if not count:
        return None
    which = "1 image is" if count == 1 else f"{count} images are"
    return (
        f"{which} too small for NIQE, which needs two whole {BLOCK}x{BLOCK} blocks (at least "
        f"{2 * BLOCK}x{BLOCK} px): no score"
    )


@app.command("niqe")
def niqe_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Image files, or folders of images.", show_default=False)
    ],
    variant: Annotated[
        str,
        typer.Option(
            help="matlab: the official MATLAB release (as BasicSR reproduces it); "
            "paddle-pulse: what the Paddle PULSE reproduction's table was computed with."
        ),
    ] = "matlab",
    backend: Annotated[str, typer.Option(help="numpy, or onnx (a Paddle graph in onnxruntime).")] = "numpy",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """NIQE (lower is more natural) of each image, and their mean. Exits 1 if any image has none.

    Folders stand for the image files in them. An image needs two whole
    96x96 blocks (at least 192x96 px); smaller ones get no score, and the
    mean says how many images it covers.

    Example: pulse niqe out/ --variant matlab
    """
    if variant not in VARIANTS:
        fail(f"--variant: unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    if backend not in BACKENDS:
        fail(f"--backend: unknown NIQE backend {backend!r}; known: {', '.join(BACKENDS)}")
    scores = score_all(paths, variant, backend)
    mean = mean_score(scores)
    if as_json:
        report = {
            "variant": variant,
            "backend": backend,
            "images": [{"path": s.path, "niqe": s.value, "error": s.error} for s in scores],
            "mean": mean,
            "mean_of": sum(s.value is not None for s in scores),
            "too_small": sum(s.too_small for s in scores),
        }
        typer.echo(json.dumps(report, indent=2))
    else:
        out.print(_table(scores, mean, variant))
    note = too_small_note(scores)
    if note:
        err.print(f"note: {note}")
    if any(s.error is not None for s in scores):
        raise typer.Exit(1)


def _table(scores: list[Score], mean: float | None, variant: str) -> Table:
    """One row per image, then the mean over the scored ones."""
    table = Table(title=f"NIQE ({variant}; lower is more natural)")
    table.add_column("image", overflow="fold")
    table.add_column("NIQE", justify="right")
    table.add_column("note", overflow="fold")
    for s in scores:
        table.add_row(s.path, "-" if s.value is None else f"{s.value:.4f}", s.error or "")
    table.add_section()
    table.add_row(mean_label(scores), "-" if mean is None else f"{mean:.4f}", "")
    return table
