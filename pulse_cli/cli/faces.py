"""``pulse faces``: find and align the faces of photos, for checking before a long search."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pulse_cli.cli.app import app
from pulse_cli.cli.console import err, error_line, fail, out
from pulse_cli.faces.detect import MIN_FACE, Detector
from pulse_cli.faces.extract import extract_photo
from pulse_cli.faces.screen import MIN_CONFIDENCE
from pulse_cli.faces.sizes import choose_input_size
from pulse_cli.images import InputImageError, is_image_file
from pulse_cli.models.registry import DEFAULT_MODEL, get_spec
from pulse_cli.models.wheel import ModelFetchError
from pulse_cli.weights import WeightsError


def photo_files(paths: list[Path]) -> tuple[list[tuple[Path, str | None]], list[Path]]:
    """The files ``pulse faces`` tries, each with a reason when it cannot be tried (a missing path,
    a folder without images), and the files of folders left out because they are not images. A
    folder stands for its regular, non-hidden files, sorted, as ``pulse upsample`` reads one."""
    tried: list[tuple[Path, str | None]] = []
    left_out: list[Path] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            left_out += [file for file in files if not is_image_file(file)]
            images = [(file, None) for file in files if is_image_file(file)]
            tried += images or [(path, "folder holds no image files")]
        elif path.exists():
            tried.append((path, None))  # named on its own: tried, and an error says what it is not
        else:
            tried.append((path, "no such file or folder"))
    return tried, left_out


@app.command("faces")
def faces_command(
    paths: Annotated[list[Path], typer.Argument(help="Photos, or folders of photos.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for faces/ and annotated/.")],
    input_size: Annotated[
        int | None,
        typer.Option(
            min=8,
            max=64,
            help="Side of the aligned crops (the model's input size); default: chosen per face, as "
            "pulse upsample chooses it for the default model.",
            show_default=False,
        ),
    ] = None,
    min_confidence: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Detections below this confidence are not faces.")
    ] = MIN_CONFIDENCE,
    min_face: Annotated[
        int, typer.Option(min=12, help="Smallest face side looked for, in pixels.")
    ] = MIN_FACE,
    weights: Annotated[
        Path | None,
        typer.Option(
            help="The mtcnn-1.0.0 wheel (fetched by hand) or converted MTCNN weights; default: cache."
        ),
    ] = None,
) -> None:
    """Find the faces in photos (MTCNN), align each as FFHQ was aligned and write the crops, one JSON per
    face and an annotated copy of each photo. Every file is accounted for: its faces, its one-line
    error, or, in a folder, a note that it is not an image and was left out. Exits 1 if any photo
    failed or had no face.

    Example: pulse faces photo.jpg -o out/
    """
    try:
        detector = Detector(weights, min_face=min_face)
    except (ModelFetchError, WeightsError, OSError) as exc:
        fail(str(exc))
    size = input_size or partial(choose_input_size, resolution=get_spec(DEFAULT_MODEL).resolution)
    failed = found = 0
    tried, left_out = photo_files(paths)
    for path in left_out:
        err.print(escape(f"note: {path} is not an image: left out"))
    for path, reason in tried:
        if reason is not None:
            error_line(f"{path}: {reason}")
            failed += 1
            continue
        try:
            faces = extract_photo(path, output, detector, size, min_confidence)
        except InputImageError as exc:
            error_line(str(exc))
            failed += 1
            continue
        found += len(faces.found)
        names = ", ".join(f"{item.name} ({item.face.score:.3f})" for item in faces.found)
        out.print(escape(f"{path}: {len(faces.found)} face(s): {names}"))
        for reason in faces.dropped:
            out.print(escape(f"{path}: dropped {reason}"))
    ignored = f"; {len(left_out)} file(s) not images (left out)" if left_out else ""
    out.print(escape(f"{found} face(s) written to {output / 'faces'}; {failed} photo(s) failed{ignored}"))
    if failed:
        raise typer.Exit(1)
