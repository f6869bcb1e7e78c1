"""The three graphs ``pulse export`` writes for a model, with the inputs they take.

Each graph is a Paddle layer whose ``forward`` takes plain tensors (no Python-side options), so
``paddle.jit.save`` and paddle2onnx see one fixed program with a dynamic batch dimension:

- ``synthesis``: searched latent [B, L, D] (+ one noise map per noise layer) → image in [0, 1];
  the latent goes through the model's gaussian-fit mapping first, exactly as in the search.
- ``downsample``: image [B, 3, R, R] → its bicubic downscale [B, 3, r, r] (PULSE's operator).
- ``scorer``: the search's ``Objective``: latent, noise, reference [B, 3, r, r] → image, its
  downscale, the weighted total [B] and the stacked loss terms [T, B].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import paddle
from paddle import nn
from paddle.static import InputSpec

from pulse_cli.graphs.bicubic import BicubicDownsample
from pulse_cli.graphs.generator import Generator
from pulse_cli.graphs.objective import Objective

GRAPH_NAMES = ("synthesis", "downsample", "scorer")


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of an exported graph; ``None`` in ``shape`` is the dynamic batch."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"

    def input_spec(self) -> InputSpec:
        """The ``paddle.static.InputSpec`` that ``paddle.jit.save`` traces this input with."""
        return InputSpec(list(self.shape), self.dtype, self.name)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass
class ExportGraph:
    """A layer to export, its inputs (in feed order), its outputs (in fetch order) and how the
    layer is called with a flat list of input tensors (the order of ``inputs``)."""

    name: str
    layer: nn.Layer
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    input_spec: list[object]
    call: Callable[[list[paddle.Tensor]], list[paddle.Tensor]]

    def random_inputs(self, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Seeded inputs for a parity check: Gaussian latents and noise, images in [0, 1]."""
        rng = np.random.default_rng(seed)
        feed = {}
        for spec in self.inputs:
            shape = (batch, *spec.shape[1:])
            if spec.name in ("image", "ref_im"):
                feed[spec.name] = rng.random(shape, dtype=np.float32)
            else:
                feed[spec.name] = rng.standard_normal(shape, dtype=np.float32)
        return feed

    def run_dygraph(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The eager Paddle outputs for ``feed``: what every exported copy is checked against."""
        with paddle.no_grad():
            tensors = [paddle.to_tensor(feed[spec.name]) for spec in self.inputs]
            return [out.numpy() for out in self.call(tensors)]


class SynthesisGraph(nn.Layer):
    """Searched latent (and noise) → image in [0, 1], through the model's latent mapping."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, latent: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        return self.generator(self.generator.map_latent(latent), noise)


class DownsampleGraph(nn.Layer):
    """Image → PULSE's bicubic downscale."""

    def __init__(self, factor: int, resolution: int) -> None:
        super().__init__()
        self.downsample = BicubicDownsample(factor, side=resolution)

    def forward(self, image: paddle.Tensor) -> paddle.Tensor:
        return self.downsample(image)


class ScorerGraph(nn.Layer):
    """The search objective with a fixed latent shape [B, L, D] (a tiled latent is tiled before)."""

    def __init__(self, objective: Objective) -> None:
        super().__init__()
        self.objective = objective

    def forward(
        self, latent: paddle.Tensor, noise: list[paddle.Tensor], ref_im: paddle.Tensor
    ) -> tuple[paddle.Tensor, paddle.Tensor, paddle.Tensor, paddle.Tensor]:
        return self.objective(latent, noise, ref_im)


def _latent_and_noise(generator: Generator) -> tuple[TensorSpec, list[TensorSpec]]:
    latent = TensorSpec("latent", (None, generator.num_layers, generator.latent_dim))
    noise = [TensorSpec(f"noise_{i}", (None, 1, r, r)) for i, r in enumerate(generator.noise_resolutions)]
    return latent, noise


def synthesis_graph(generator: Generator) -> ExportGraph:
    """The synthesis graph of ``generator``."""
    latent, noise = _latent_and_noise(generator)
    layer = SynthesisGraph(generator)
    side = generator.resolution
    return ExportGraph(
        name="synthesis",
        layer=layer,
        inputs=[latent, *noise],
        outputs=[TensorSpec("image", (None, 3, side, side))],
        input_spec=[latent.input_spec(), [spec.input_spec() for spec in noise]],
        call=lambda tensors: [layer(tensors[0], tensors[1:])],
    )


def downsample_graph(resolution: int, factor: int) -> ExportGraph:
    """The bicubic downscale by ``factor`` of ``resolution``-pixel images."""
    image = TensorSpec("image", (None, 3, resolution, resolution))
    layer = DownsampleGraph(factor, resolution)
    side = resolution // factor
    return ExportGraph(
        name="downsample",
        layer=layer,
        inputs=[image],
        outputs=[TensorSpec("image_lr", (None, 3, side, side))],
        input_spec=[image.input_spec()],
        call=lambda tensors: [layer(tensors[0])],
    )


def scorer_graph(objective: Objective) -> ExportGraph:
    """The scorer graph of a search objective (its generator, factor, loss terms and eps)."""
    generator = objective.generator
    latent, noise = _latent_and_noise(generator)
    side, factor = generator.resolution, objective.downsample.factor
    ref_im = TensorSpec("ref_im", (None, 3, side // factor, side // factor))
    layer = ScorerGraph(objective)
    return ExportGraph(
        name="scorer",
        layer=layer,
        inputs=[latent, *noise, ref_im],
        outputs=[
            TensorSpec("image", (None, 3, side, side)),
            TensorSpec("image_lr", (None, 3, side // factor, side // factor)),
            TensorSpec("total", (None,)),
            TensorSpec("terms", (len(objective.term_names), None)),
        ],
        input_spec=[latent.input_spec(), [spec.input_spec() for spec in noise], ref_im.input_spec()],
        call=lambda tensors: list(layer(tensors[0], tensors[1:-1], tensors[-1])),
    )
