"""The demo: low-resolution faces made by the default generator from held-out seeds, upsampled back,
and a real photo end to end.

The faces come from seeds the search never draws its starting points from, so PULSE has to find
them (or other faces that downscale the same) on its own: with the default model (MobileStyleGAN,
1024 px) that is the paper's setting, 16×16 in, 1024×1024 out. The photo (``PHOTO``, shipped in the
package) goes through what any photo does: its face is found, aligned at the size the photo holds
it (``pulse_cli.faces.sizes``: 64 px for the astronaut), upsampled and pasted back. The contact
sheet adds a row with the originals (for the photo's face: its aligned crop at the model's
resolution), which shows how much the low-resolution input leaves open.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import paddle

from pulse_cli.atomic import atomic_save_image, atomic_write
from pulse_cli.contact_sheet import save_contact_sheet
from pulse_cli.faces.align import align
from pulse_cli.faces.detect import KEYPOINTS
from pulse_cli.graphs.bicubic import downscale_images
from pulse_cli.graphs.generator import Generator
from pulse_cli.images import read_image, to_pil
from pulse_cli.options import TOOL_STRATEGY, SearchOptions
from pulse_cli.search import draw_start
from pulse_cli.upsample import FaceOptions, Listener, UpsampleReport, sheet_columns, upsample_folder

FACE_SEED = 1_000_000  # the faces' seeds start here; the search's own seeds are drawn elsewhere
SEARCH_SEED = 0
FACES = 2
STEPS = 100  # PULSE's; each face stops once it meets eps (the faithful search: 50-70 steps at 64 px)
INPUT_SIDE = 16
# A search step (forward, backward, optimizer) costs about this many forward passes (MobileStyleGAN
# and StyleGAN, dygraph, 2-core CPU: fwd 1.6-2.2 s, fwd+bwd 4.4-5.3 s at 1024 px)
STEP_FORWARDS = 2.6
PHOTO = Path(__file__).parent / "data" / "astronaut.jpg"  # NASA, public domain (see the README)
PHOTO_FACES = 1
# Faces drawn through a model's own mapping are pulled this far towards its mean w (StyleGAN's
# truncation trick, ψ = 0.7 as in StyleGAN2's published samples): typical, photographic faces.
TRUNCATION = 0.7
W_MEAN_SAMPLES = 10_000
W_MEAN_SEED = 2_000_000


def _mapped(mapping: paddle.nn.Layer, count: int, dim: int, seed: int) -> paddle.Tensor:
    z = np.random.default_rng(seed).standard_normal((count, dim), dtype=np.float32)
    with paddle.no_grad():
        return mapping(paddle.to_tensor(z))


def make_faces(
    generator: Generator, count: int, seed: int = FACE_SEED, truncation: float = TRUNCATION
) -> np.ndarray:
    """``count`` images [count, 3, R, R] in [0, 1] from the generator's prior, one seed each.

    A generator with its own ``mapping`` draws w = mapping(z), truncated towards the mean w (of
    ``W_MEAN_SAMPLES`` held-out z) by ``truncation``, tiled over its rows, with its default noise;
    otherwise a starting point as the search draws one, spread over the rows, is mapped as PULSE
    maps it.
    """
    if generator.mapping is not None:
        w_mean = _mapped(generator.mapping, W_MEAN_SAMPLES, generator.latent_dim, W_MEAN_SEED).mean(axis=0)
    images = []
    for index in range(count):
        rng = np.random.default_rng(seed + index)
        start = draw_start(generator, 1, SearchOptions(), rng)
        noise = [paddle.to_tensor(values) for values in start.noise]
        if generator.mapping is not None:
            w = _mapped(generator.mapping, 1, generator.latent_dim, seed + index)
            truncated = w_mean + truncation * (w - w_mean)
            latent_in = truncated.unsqueeze(1).expand([-1, generator.num_layers, -1])
        else:
            latent_in = generator.map_latent(generator.expand_latent(paddle.to_tensor(start.latent)))
        with paddle.no_grad():
            images.append(generator(latent_in, noise).numpy()[0])
    return np.clip(np.stack(images), 0, 1)


def demo_options(steps: int = STEPS) -> SearchOptions:
    """The demo's search, as ``pulse upsample`` runs it (``TOOL_STRATEGY``): one face at a time,
    since a 1024² batch of three peaks near 9 GB (one face: about 3 GB), and alone each face stops
    as soon as it meets eps."""
    return SearchOptions(seed=SEARCH_SEED, steps=steps, batch_size=1, early_stop=True, strategy=TOOL_STRATEGY)


def expected_seconds(generator: Generator, faces: int = FACES, steps: int = STEPS) -> float:
    """About how long ``run_demo`` will take with this generator: one forward pass is timed and
    scaled by ``STEP_FORWARDS`` per search step per face (plus drawing the faces); an early stop
    makes it shorter."""
    start = draw_start(generator, 1, SearchOptions(), np.random.default_rng(0))
    noise = [paddle.to_tensor(n) for n in start.noise]
    latent = paddle.zeros([1, generator.num_layers, generator.latent_dim])
    with paddle.no_grad():
        generator(latent, noise)  # the first pass pays for allocations: time the second
        began = time.perf_counter()
        generator(latent, noise)
        forward = time.perf_counter() - began
    return forward * faces * (1 + steps * STEP_FORWARDS)


def write_demo_inputs(
    generator: Generator, folder: Path, count: int = FACES, side: int = INPUT_SIDE
) -> list[str]:
    """Write ``count`` faces to ``folder/originals`` and their ``side`` px downscales to
    ``folder/inputs``."""
    faces = make_faces(generator, count)
    factor = generator.resolution // side
    names = [f"face_{index}" for index in range(count)]
    for kind, images in (("originals", faces), ("inputs", downscale_images(faces, factor))):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for name, image in zip(names, images):
            atomic_save_image(to_pil(image), folder / kind / f"{name}.png")
    return names


def write_demo_photo(folder: Path, photo: Path = PHOTO) -> None:
    """Copy the demo's photo into ``folder/inputs``, where its faces are found like any photo's."""
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    with atomic_write(folder / "inputs" / photo.name, "wb") as file:
        file.write(photo.read_bytes())


def write_photo_originals(report: UpsampleReport, folder: Path, resolution: int) -> None:
    """For each face found in a photo, its aligned crop at the model's resolution, as
    ``folder/originals/{name}.png``: what the photo shows of the face the search was given."""
    for record in report.images:
        if record.face is None or record.status == "failed":
            continue
        keypoints = np.array([record.face["keypoints"][name] for name in KEYPOINTS])
        crop = align(read_image(record.input), keypoints, resolution).image
        atomic_save_image(to_pil(crop), folder / "originals" / f"{record.name}.png")


def run_demo(
    generator: Generator,
    folder: str | Path,
    *,
    faces: int = FACES,
    side: int = INPUT_SIDE,
    options: SearchOptions | None = None,
    listener: Listener | None = None,
    photo: Path | None = PHOTO,
) -> UpsampleReport:
    """Make the demo's inputs in ``folder`` (``faces`` generated faces of ``side`` px and ``photo``)
    and upsample them into ``folder/outputs``; the photo's face is searched at the size it holds.

    Outputs are redone on every run. The contact sheet has the originals as a fifth row.
    """
    folder = Path(folder)
    options = options or demo_options()
    write_demo_inputs(generator, folder, faces, side)
    if photo is not None:
        write_demo_photo(folder, photo)
    report = upsample_folder(
        generator, folder / "inputs", folder / "outputs", options, overwrite=True, listener=listener,
        contact_sheet=False, faces=FaceOptions(),
    )
    write_photo_originals(report, folder, generator.resolution)
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
