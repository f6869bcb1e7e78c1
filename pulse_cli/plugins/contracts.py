"""What each ``pulse_cli.*`` entry point must name: one typed contract per plugin group.

A plugin distribution registers objects under these groups (``[project.entry-points."pulse_cli.X"]``
in its ``pyproject.toml``); pulse-cli registers its own the same way. Each group's object is
described here, in one place:

- ``pulse_cli.losses``: a ``LossTerm``: ``term(inputs) -> Tensor [B]``, one value per image,
  made of operators that run under ``paddle.jit.to_static`` and export to ONNX.
- ``pulse_cli.optimizers``: an ``OptimizerFactory``: ``factory(parameters, learning_rate)``.
- ``pulse_cli.generators``: a ``GeneratorSpec``: ``build(**config)`` (the architecture with
  random weights) and ``load(weights)`` (the pretrained model).
- ``pulse_cli.backends``: a ``Backend``: how a search's gradient steps and its forward-only
  scoring run (the built-in ``dygraph``, ``static`` and ``onnx`` are listed in
  ``pulse_cli.backends.registry``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import paddle
from paddle.optimizer import Optimizer
from paddle.optimizer.lr import LRScheduler

from pulse_cli.graphs.generator import Capabilities, Generator
from pulse_cli.graphs.losses import LossInputs, LossTerm
from pulse_cli.graphs.objective import Objective

__all__ = ["Backend", "GeneratorSpec", "LossInputs", "LossTerm", "OptimizerFactory", "Scorer"]
# ``LossTerm`` (``Callable[[LossInputs], Tensor]``) is defined beside the built-in terms, in the
# graphs layer that the objective is assembled in; it is part of this contract all the same.


class OptimizerFactory(Protocol):
    """An optimizer over the searched tensors (the latent and trainable noise); the search wraps
    it in the spherical projection. ``learning_rate`` is a float or a Paddle LR scheduler."""

    def __call__(self, parameters: list[paddle.Tensor], learning_rate: float | LRScheduler) -> Optimizer: ...


@runtime_checkable
class GeneratorSpec(Protocol):
    """A generator plugin: the architecture, its pretrained weights, and what backends may assume.

    ``resolution`` is the output side of the pretrained model; ``fixed_resolution`` says the
    architecture makes only that size (otherwise ``build(resolution=…)`` takes others, as
    StyleGAN's any power of two). ``source`` says where its weights come from (with their hash).
    ``capabilities`` are declared here, not probed from the network. ``small_config`` is a
    ``build`` config for a small, fast instance (tests, smoke checks).

    The ``Generator`` that ``build`` and ``load`` return declares the rest: its latent layout
    (``num_layers``, ``latent_dim``, ``latent_radius``), its noise layers (``noise_resolutions``,
    optional baked ``default_noise``) and its ``latent_map`` from the searched latent to the
    synthesis input (``pulse_cli.graphs.generator``).
    """

    name: str
    resolution: int
    fixed_resolution: bool
    description: str
    source: str
    capabilities: Capabilities
    small_config: Mapping[str, Any]

    def build(self, **config: Any) -> Generator:
        """The architecture with random weights (seeded by ``seed``), for benchmarks and tests;
        ``resolution`` and other architecture options as the spec takes them. ``ValueError`` for
        a config the architecture cannot take."""
        ...

    def load(self, weights: Path | None = None, gaussian_fit: Path | None = None) -> Generator:
        """The pretrained generator; ``weights`` overrides where its weights are found."""
        ...


class Scorer(Protocol):
    """Forward-only scoring of latents: totals [N] and terms [T, N] for N latents."""

    runtime: str

    def score(
        self, latent: np.ndarray, noise: Sequence[np.ndarray], ref_im: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


class Backend(Protocol):
    """How a search runs: what its gradient steps run through and what scores without gradients.

    ``steps_own``: the backend runs the gradient steps itself (``pulse bench`` times them);
    otherwise they run eagerly. ``rescores``: each image's best latent is scored again by the
    backend's scorer after the search (``SearchResult.rescore``). A backend whose first use in a
    process costs more than a step (compiling) may say so in a ``first_use`` string, which the
    progress output shows once.
    """

    name: str
    description: str
    steps_own: bool
    rescores: bool

    def objective(self, objective: Objective) -> Objective:
        """The objective the gradient steps run through (the eager one, or a compiled copy)."""
        ...

    def scorer(self, objective: Objective) -> Scorer:
        """What scores starting points and outputs without gradients."""
        ...

    def roles(self, objective: Objective, scorer: Scorer) -> dict[str, str]:
        """Which runtime does what, for reports: ``gradient steps`` and ``forward-only scoring``."""
        ...
