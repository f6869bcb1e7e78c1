"""A pretrained generator as the latent search sees it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import paddle
import paddle.nn.functional as F
from paddle import nn


@dataclass(frozen=True)
class GaussianFit:
    """Per-dimension mean and std of LeakyReLU(5)(mapping(z)): PULSE's map from the sphere to W."""

    mean: paddle.Tensor
    std: paddle.Tensor


class Generator(nn.Layer):
    """A synthesis network with what the search needs to know about it.

    ``synthesis(latent_in [B, num_layers, latent_dim], noise: list of [B,1,r,r]) -> [B,3,R,R]``
    in [-1, 1]. ``noise_resolutions`` lists r for each noise input (empty when there is none).
    ``gaussian_fit``, when given, maps the searched latent to the synthesis input as PULSE does:
    ``LeakyReLU(0.2)(latent * std + mean)``. ``latent_radius``, when given, is the radius the
    starting latent vectors are put on (otherwise they keep the radius they are drawn with).
    """

    def __init__(
        self,
        synthesis: nn.Layer,
        *,
        name: str,
        resolution: int,
        num_layers: int,
        latent_dim: int,
        noise_resolutions: Sequence[int] = (),
        gaussian_fit: GaussianFit | None = None,
        latent_radius: float | None = None,
        source: str = "",
    ) -> None:
        super().__init__()
        self.synthesis = synthesis
        self.name = name
        self.resolution = resolution
        self.num_layers = num_layers
        self.latent_dim = latent_dim
        self.noise_resolutions = tuple(noise_resolutions)
        self.latent_radius = latent_radius
        self.source = source
        if gaussian_fit is None:
            self.fit_mean = None
            self.fit_std = None
        else:
            self.register_buffer("fit_mean", gaussian_fit.mean.astype("float32").reshape([-1]))
            self.register_buffer("fit_std", gaussian_fit.std.astype("float32").reshape([-1]))

    def map_latent(self, latent: paddle.Tensor) -> paddle.Tensor:
        """The synthesis input for a searched latent [B, L, D]."""
        if self.fit_mean is None:
            return latent
        return F.leaky_relu(latent * self.fit_std + self.fit_mean, negative_slope=0.2)

    def forward(self, latent_in: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        """The image in [0, 1] for a mapped latent (see ``map_latent``) and noise."""
        return (self.synthesis(latent_in, noise) + 1) / 2


class GeneratorSpec(Protocol):
    """What a ``pulse_cli.generators`` entry point names: a pretrained model and how to load it."""

    name: str
    resolution: int
    description: str
    source: str  # where the weights come from, with their hash

    def load(self, weights: Path | None = None, gaussian_fit: Path | None = None) -> Generator:
        """The ready generator; ``weights`` overrides the default location of the weights."""
        ...
