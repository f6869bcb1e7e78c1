"""``pulse demo``: the first command to run, with nothing to download by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pulse_cli.cli.app import app
from pulse_cli.cli.common import Device, device_option, get_generator, run_job, use_device
from pulse_cli.cli.console import err
from pulse_cli.demo import FACES, INPUT_SIDE, PHOTO_FACES, STEPS, demo_options, expected_seconds, run_demo
from pulse_cli.graphs.op import library
from pulse_cli.models.registry import DEFAULT_MODEL
from pulse_cli.upsample import Listener, UpsampleReport

DEMO_DIR = Path("pulse-demo")


@app.command()
def demo(
    output_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder for everything.")] = DEMO_DIR,
    faces: Annotated[int, typer.Option(min=1, max=16, help="How many faces to make and upsample.")] = FACES,
    steps: Annotated[
        int, typer.Option(min=1, help="Optimization steps per face (fewer once every face meets eps).")
    ] = STEPS,
    model: Annotated[str, typer.Option(help="Generator to make faces and search with.")] = DEFAULT_MODEL,
    device: Annotated[Device | None, device_option("Device (default: Paddle's):")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary, no progress.")] = False,
) -> None:
    """Make two faces with the default generator, shrink them to 16x16, upsample
    them back, and take a real photo (NASA's astronaut portrait) through face
    detection, alignment, upsampling and paste-back.

    The faces come from held-out seeds. The model (38 MB) and the face
    detector are fetched on first use (offline afterwards). Writes
    OUTPUT/originals, OUTPUT/inputs (16x16 faces and the photo) and
    OUTPUT/outputs with report.json, contact_sheet.png, and the photo's
    faces/, upsampled/ and photos/. Prints its expected time first.

    Example: pulse demo -o pulse-demo
    """
    use_device(device)
    err.print(f"loading {model} (fetched, converted and fitted on first use)...")
    generator = get_generator(model, None, None)
    if generator.capabilities.compiled_ops and library.build_pending():  # before the faces are drawn
        err.print(f"compiled ops: {library.FIRST_BUILD}")
    images = faces + PHOTO_FACES
    minutes = expected_seconds(generator, images, steps) / 60
    err.print(
        f"demo: {faces} faces from {INPUT_SIDE}x{INPUT_SIDE} and a photo's face from the size it "
        f"holds, to {generator.resolution}x{generator.resolution}, up to {steps} steps each: "
        f"expect at most about {minutes:.1f} min"
    )
    options = demo_options(steps)

    def job(listener: Listener) -> UpsampleReport:
        return run_demo(generator, output_dir, faces=faces, options=options, listener=listener)

    report = run_job(job, as_json)
    raise typer.Exit(1 if report.failed else 0)
