"""The demo: low-resolution faces made by the default generator from held-out seeds, upsampled back.

The faces come from seeds the search never draws its starting points from, so PULSE has to find
them (or other faces that downscale the same) on its own. The contact sheet adds a row with the
originals, which shows how much the low-resolution input leaves open.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import paddle

from pulse_cli.atomic import atomic_save_image
from pulse_cli.contact_sheet import save_contact_sheet
from pulse_cli.graphs.bicubic import downscale_images
from pulse_cli.graphs.generator import Generator
from pulse_cli.images import read_image, to_pil
from pulse_cli.options import SearchOptions
from pulse_cli.search import draw_start
from pulse_cli.upsample import Listener, UpsampleReport, sheet_columns, upsample_folder

FACE_SEED = 1_000_000  # the faces' seeds start here; the search's own seeds are drawn elsewhere
SEARCH_SEED = 0
FACES = 6
FACTOR = 4


def make_faces(generator: Generator, count: int, seed: int = FACE_SEED) -> np.ndarray:
    """``count`` images [count, 3, R, R] in [0, 1] from the generator's prior, one seed each."""
    images = []
    for index in range(count):
        start = draw_start(generator, 1, SearchOptions(), np.random.default_rng(seed + index))
        latent = paddle.to_tensor(start.latent).expand([-1, generator.num_layers, -1])
        noise = [paddle.to_tensor(values) for values in start.noise]
        with paddle.no_grad():
            images.append(generator(generator.map_latent(latent), noise).numpy()[0])
    return np.clip(np.stack(images), 0, 1)


def write_demo_inputs(
    generator: Generator, folder: Path, count: int = FACES, factor: int = FACTOR
) -> list[str]:
    """Write ``count`` faces to ``folder/originals`` and their downscales to ``folder/inputs``."""
    faces = make_faces(generator, count)
    names = [f"face_{index}" for index in range(count)]
    for kind, images in (("originals", faces), ("inputs", downscale_images(faces, factor))):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for name, image in zip(names, images):
            atomic_save_image(to_pil(image), folder / kind / f"{name}.png")
    return names


def run_demo(
    generator: Generator,
    folder: str | Path,
    *,
    faces: int = FACES,
    factor: int = FACTOR,
    options: SearchOptions | None = None,
    listener: Listener | None = None,
) -> UpsampleReport:
    """Make the demo's inputs in ``folder`` and upsample them into ``folder/outputs``.

    Outputs are redone on every run. The contact sheet has the originals as a fifth row.
    """
    folder = Path(folder)
    options = options or SearchOptions(seed=SEARCH_SEED, batch_size=faces)
    write_demo_inputs(generator, folder, faces, factor)
    report = upsample_folder(
        generator, folder / "inputs", folder / "outputs", options, overwrite=True, listener=listener,
        contact_sheet=False,
    )
    columns = [
        replace(column, original=read_image(folder / "originals" / f"{column.title}.png"))
        for column in sheet_columns(report, generator.resolution)
    ]
    if columns:
        report.contact_sheet_paths = [
            save_contact_sheet(columns, folder / "outputs" / "contact_sheet.png", generator.resolution)
        ]
        report.save()
    return report
