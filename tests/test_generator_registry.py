"""Generator specs split like timm's: ``build(**config)`` is the architecture with random weights,
``load(weights)`` the pretrained model; what backends may assume is declared, and a new generator
is one module and one ``pulse_cli.generators`` entry point."""

from __future__ import annotations

import math

import numpy as np
import paddle
import pytest
from PIL import Image

from pulse_cli.graphs.generator import GaussianFit, GaussianLatentMap
from pulse_cli.models.registry import build_generator, generator_specs, get_spec, load_generator
from pulse_cli.options import SearchOptions
from pulse_cli.plugins.contracts import GeneratorSpec
from pulse_cli.search import build_objective, draw_start, search
from pulse_cli.upsample import upsample_folder

TOY_ENTRY_POINT = "[pulse_cli.generators]\ntoy-gan = pulse_toy_gan:SPEC\n"
REGISTERED = [info.name for info in generator_specs() if info.loaded]

# A whole generator plugin in one module: a real (tiny) synthesis network with one noise layer,
# baked default noise, and a MobileStyleGAN-style latent map (gain √2 after the leaky ReLU).
TOY_GENERATOR = '''
import math
from dataclasses import dataclass, field

import numpy as np
import paddle
from paddle import nn

from pulse_cli.graphs.generator import Capabilities, GaussianFit, GaussianLatentMap, Generator

DIM, SIDE = 8, 8


class Synthesis(nn.Layer):
    def __init__(self):
        super().__init__()
        self.to_image = nn.Linear(2 * DIM, 3 * SIDE * SIDE)

    def forward(self, latent_in, noise):
        x = paddle.tanh(self.to_image(latent_in.reshape([-1, 2 * DIM])))
        return x.reshape([-1, 3, SIDE, SIDE]) + 0.1 * noise[0]


@dataclass(frozen=True)
class ToySpec:
    name: str = "toy-gan"
    resolution: int = SIDE
    fixed_resolution: bool = True
    description: str = "a two-layer toy generator"
    source: str = "random, seeded"
    capabilities: Capabilities = Capabilities()
    small_config: dict = field(default_factory=dict)

    def build(self, resolution=SIDE, seed=0):
        if resolution != SIDE:
            raise ValueError(f"{self.name} makes {SIDE} px images, not {resolution} px")
        paddle.seed(seed)
        baked = np.random.default_rng(seed).standard_normal((1, 1, SIDE, SIDE)).astype(np.float32)
        fit = GaussianFit(mean=paddle.full([DIM], 0.1), std=paddle.full([DIM], 0.5))
        return Generator(
            Synthesis(), name=self.name, resolution=SIDE, num_layers=2, latent_dim=DIM,
            noise_resolutions=(SIDE,), default_noise=[baked],
            latent_map=GaussianLatentMap(fit, gain=math.sqrt(2)),
            capabilities=self.capabilities, source=self.source,
        )

    def load(self, weights=None, gaussian_fit=None):
        if weights is None:
            raise FileNotFoundError(f"{self.name} needs --weights")
        generator = self.build()
        generator.synthesis.set_state_dict(paddle.load(str(weights)))
        return generator


SPEC = ToySpec()
'''


@pytest.mark.parametrize("name", REGISTERED)
def test_every_registered_generator_builds_searches_and_declares_its_contract(name):
    spec = get_spec(name)
    assert isinstance(spec, GeneratorSpec)
    generator = build_generator(name, **spec.small_config)
    assert generator.capabilities == spec.capabilities
    side = generator.resolution // 4
    refs = np.random.default_rng(0).random((2, 3, side, side), dtype=np.float32)
    options = SearchOptions(steps=2, seed=3)
    start = draw_start(generator, 2, options, np.random.default_rng(0))
    rows = generator.latent_rows(options.layout(generator.latent_layout.default))
    assert start.latent.shape == (2, rows, generator.latent_dim)
    assert [n.shape[2:] for n in start.noise] == [(r, r) for r in generator.noise_resolutions]
    with paddle.no_grad():
        image, image_lr, total, _ = build_objective(generator, 4, options)(
            paddle.to_tensor(start.latent), [paddle.to_tensor(n) for n in start.noise], paddle.to_tensor(refs)
        )
    assert image.shape == [2, 3, generator.resolution, generator.resolution]
    assert image_lr.shape == [2, 3, side, side] and np.isfinite(total.numpy()).all()
    result = search(generator, refs, options)
    assert result.steps_run == 2 and np.isfinite(result.best_total).all()


@pytest.mark.parametrize("name", [name for name in REGISTERED if get_spec(name).fixed_resolution])
def test_a_fixed_resolution_generator_refuses_to_build_at_another(name):
    spec = get_spec(name)
    with pytest.raises(ValueError, match=f"makes {spec.resolution} px images"):
        spec.build(resolution=spec.resolution * 2)


def test_a_generator_added_by_one_module_and_one_entry_point_upsamples(mount_distribution, tmp_path):
    mount_distribution("pulse-toy-gan", TOY_ENTRY_POINT, "pulse_toy_gan", TOY_GENERATOR)
    built = build_generator("toy-gan", seed=5)
    weights = tmp_path / "toy.pdparams"
    paddle.save(built.synthesis.state_dict(), str(weights))
    generator = load_generator("toy-gan", weights=weights)
    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(2):
        pixels = (np.random.default_rng(i).random((2, 2, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(faces / f"face{i}.png")
    report = upsample_folder(generator, faces, tmp_path / "out", SearchOptions(steps=2, seed=1, batch_size=2))
    assert [record.status for record in report.images] == ["ok", "ok"]
    assert report.model["name"] == "toy-gan"


def test_a_generator_with_baked_noise_starts_from_it(mount_distribution):
    mount_distribution("pulse-toy-gan", TOY_ENTRY_POINT, "pulse_toy_gan", TOY_GENERATOR)
    generator = build_generator("toy-gan", seed=5)
    start = draw_start(generator, 3, SearchOptions(), np.random.default_rng(0))
    for noise, baked in zip(start.noise, generator.default_noise):
        np.testing.assert_array_equal(noise, np.repeat(baked, 3, axis=0))


def test_the_latent_map_is_the_generators_and_its_fit_inverts_its_nonlinearity():
    """MobileStyleGAN's map ``√2 · leaky_relu(x · std + mean, 0.2)``: its fit is taken over
    ``leaky_relu(w / √2, 5)``, which takes the map's output back to ``x · std + mean``."""
    rng = np.random.default_rng(1)
    mean, std = rng.standard_normal(6).astype(np.float32), rng.random(6).astype(np.float32) + 0.5
    fit = GaussianFit(paddle.to_tensor(mean), paddle.to_tensor(std))
    latent_map = GaussianLatentMap(fit, gain=math.sqrt(2))
    latent = rng.standard_normal((2, 3, 6)).astype(np.float32)
    w = latent_map(paddle.to_tensor(latent)).numpy()
    x = latent * std + mean
    np.testing.assert_allclose(w, math.sqrt(2) * np.where(x >= 0, x, 0.2 * x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(GaussianLatentMap.gaussianize(w, gain=math.sqrt(2)), x, rtol=1e-5, atol=1e-5)


def test_a_generator_that_takes_one_image_at_a_time_is_exported_and_scored_so():
    """``Capabilities.any_batch`` false: the exported scorer is run by onnxruntime row by row."""
    from pulse_cli import backends
    from pulse_cli.graphs.generator import Capabilities, Generator
    from pulse_cli.models.stylegan import FFHQ

    built = FFHQ.build(**FFHQ.small_config)
    single = Generator(
        built.synthesis, name="one-at-a-time", resolution=built.resolution, num_layers=built.num_layers,
        latent_dim=built.latent_dim, noise_resolutions=built.noise_resolutions, latent_map=built.latent_map,
        capabilities=Capabilities(any_batch=False),
    )  # fmt: skip
    objective = build_objective(single, 4, SearchOptions(backend="onnx"))
    rng = np.random.default_rng(3)
    latent = rng.standard_normal((3, single.num_layers, single.latent_dim), dtype=np.float32)
    noise = [rng.standard_normal((3, 1, r, r), dtype=np.float32) for r in single.noise_resolutions]
    refs = rng.random((3, 3, 8, 8), dtype=np.float32)
    scorer = backends.forward_scorer(objective, "onnx")
    run, batches = scorer.graph.run, []
    scorer.graph.run = lambda feed: batches.append(len(feed["latent"])) or run(feed)
    total, terms = scorer.score(latent, noise, refs)
    assert batches == [1, 1, 1]
    eager_total, eager_terms = backends.PaddleScorer(objective).score(latent, noise, refs)
    np.testing.assert_allclose(total, eager_total, rtol=1e-4)
    np.testing.assert_allclose(terms, eager_terms, rtol=1e-4)
