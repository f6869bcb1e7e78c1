"""A generator as the latent search sees it: a synthesis network, the map from the searched latent
to the synthesis input, its latent and noise layout, and what the backends may assume of it.

This is the bottom of the stack: the objective, the exports and the backends take a ``Generator``;
the model plugins (``pulse_cli.models``) build one from a ``GeneratorSpec``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from pulse_cli.options import LATENT_LAYOUTS

PULSE_SLOPE = 0.2  # StyleGAN's leaky ReLU, which PULSE's map from the sphere to W inverts


@dataclass(frozen=True)
class GaussianFit:
    """Per-dimension mean and std of the mapping network's outputs made Gaussian
    (``GaussianLatentMap.gaussianize``): PULSE's map from the sphere to W."""

    mean: paddle.Tensor
    std: paddle.Tensor


@dataclass(frozen=True)
class Capabilities:
    """What a backend may assume of a generator's synthesis network, declared by its spec.

    ``onednn_backward``: its gradients for the latent and noise, with its parameters frozen as a
    search has them, are right under oneDNN's backward kernels (and faster: the ``static``
    backend trains through them); otherwise only the forward uses oneDNN.
    ``any_batch``: its exported graphs run with any batch size; otherwise they are run one image
    at a time (the export's parity checks, the ``onnx`` backend's scoring).
    ``compiled_ops``: it runs compiled custom ops (``graphs/op``) where they can be had, whose
    library is built on first use (``library.build_pending``, said in progress output).
    """

    onednn_backward: bool = False
    any_batch: bool = True
    compiled_ops: bool = False


@dataclass(frozen=True)
class LatentLayout:
    """Which searched latent vectors feed which synthesis rows, as a generator declares it.

    A search optimizes a latent [B, G, D] that ``Generator.expand_latent`` spreads over the
    synthesis network's L rows: ``full`` (PULSE's W+: G = L, a vector per row), ``tiled`` (G = 1,
    one vector for every row: PULSE's ``--tile-latent``) or ``shared`` (a vector per group of
    rows in ``shared_rows``, as the network's own training shared them; rows in no group keep
    their own). ``default`` is the layout a search uses when none is asked for: the best
    measured for this generator.
    """

    shared_rows: tuple[tuple[int, ...], ...] = ()
    default: str = "full"

    def __post_init__(self) -> None:
        if self.default not in LATENT_LAYOUTS:
            raise ValueError(f"unknown latent layout {self.default!r}; known: {', '.join(LATENT_LAYOUTS)}")


class IdentityLatentMap(nn.Layer):
    """The searched latent is the synthesis input itself (a DCGAN's z)."""

    def forward(self, latent: paddle.Tensor) -> paddle.Tensor:
        return latent


class GaussianLatentMap(nn.Layer):
    """PULSE's map from the sphere to W: ``gain · leaky_relu(latent · std + mean, slope)``.

    StyleGAN 1 (PULSE): slope 0.2, gain 1. A network whose mapping output ends in a scaled leaky
    ReLU (MobileStyleGAN's ``√2 · leaky_relu(·, 0.2)``) passes its gain. The fit it uses is taken
    over ``gaussianize(w)`` of mapping outputs ``w``: the inverse of that nonlinearity.
    """

    def __init__(self, fit: GaussianFit, negative_slope: float = PULSE_SLOPE, gain: float = 1.0) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)
        self.gain = float(gain)
        self.register_buffer("mean", fit.mean.astype("float32").reshape([-1]))
        self.register_buffer("std", fit.std.astype("float32").reshape([-1]))

    def forward(self, latent: paddle.Tensor) -> paddle.Tensor:
        mapped = F.leaky_relu(latent * self.std + self.mean, negative_slope=self.negative_slope)
        return mapped if self.gain == 1.0 else mapped * self.gain

    @staticmethod
    def gaussianize(w: np.ndarray, negative_slope: float = PULSE_SLOPE, gain: float = 1.0) -> np.ndarray:
        """Mapping outputs ``w`` taken back through the map's nonlinearity (PULSE's ``LeakyReLU(5)``
        for slope 0.2, gain 1): what the gaussian fit's mean and std are computed over."""
        x = w / gain
        return np.where(x >= 0, x, x / negative_slope)


class Generator(nn.Layer):
    """A synthesis network with what the search needs to know about it.

    ``synthesis(latent_in [B, num_layers, latent_dim], noise: list of [B,1,r,r]) -> [B,3,R,R]``
    in [-1, 1]. ``noise_resolutions`` lists r for each noise input (empty when there is none);
    ``default_noise``, when given, holds the network's own ("baked") noise maps [1,1,r,r], which
    searches start from instead of Gaussian noise. ``latent_map`` takes the searched latent to
    the synthesis input (``IdentityLatentMap`` when not given; ``GaussianLatentMap`` is PULSE's).
    ``latent_radius``, when given, is the radius the starting latent vectors are put on
    (otherwise they keep the radius they are drawn with). ``capabilities`` are what backends may
    assume of the synthesis network; ``latent_layout`` which searched vectors feed which rows;
    ``default_backend`` the backend a search runs on when none is asked for, chosen by measuring
    this generator (``pulse bench``; None: the backend registry's default).
    ``mapping``, when the model has one, is its own mapping network z [B, D] → w [B, D] (one
    synthesis row): what faces are drawn from its prior with (``pulse demo``); the search never
    runs it.
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
        latent_map: nn.Layer | None = None,
        default_noise: Sequence[np.ndarray] | None = None,
        latent_radius: float | None = None,
        capabilities: Capabilities = Capabilities(),
        latent_layout: LatentLayout = LatentLayout(),
        default_backend: str | None = None,
        mapping: nn.Layer | None = None,
        source: str = "",
    ) -> None:
        super().__init__()
        self.synthesis = synthesis
        self.latent_map = latent_map if latent_map is not None else IdentityLatentMap()
        self.name = name
        self.resolution = resolution
        self.num_layers = num_layers
        self.latent_dim = latent_dim
        self.noise_resolutions = tuple(noise_resolutions)
        self.latent_radius = latent_radius
        self.capabilities = capabilities
        self.latent_layout = latent_layout
        self.default_backend = default_backend
        self.mapping = mapping
        self.source = source
        # compiled copies of the synthesis network, by how they were compiled (``compiled``); a
        # plain dict, so they are not sublayers
        self._compiled: dict[Hashable, nn.Layer] = {}
        self.default_noise = None
        if default_noise is not None:
            self.default_noise = tuple(np.asarray(n, np.float32) for n in default_noise)
            shapes = [n.shape for n in self.default_noise]
            if shapes != [(1, 1, r, r) for r in self.noise_resolutions]:
                raise ValueError(f"{name}: default noise maps {shapes} do not match {self.noise_resolutions}")

    @property
    def fit_mean(self) -> paddle.Tensor | None:
        """The gaussian fit's mean, when the latent map is PULSE's (None for an identity map)."""
        return self.latent_map.mean if isinstance(self.latent_map, GaussianLatentMap) else None

    def row_index(self, layout: str) -> np.ndarray:
        """For each synthesis row, the row of a searched latent in ``layout`` that feeds it
        ([num_layers] ints; the latent has ``max + 1`` rows)."""
        if layout == "full":
            return np.arange(self.num_layers)
        if layout == "tiled":
            return np.zeros(self.num_layers, np.int64)
        if layout != "shared":
            raise ValueError(f"unknown latent layout {layout!r}; known: {', '.join(LATENT_LAYOUTS)}")
        first = np.arange(self.num_layers)
        for group in self.latent_layout.shared_rows:
            first[list(group)] = group[0]
        return np.unique(first, return_inverse=True)[1].reshape(-1)

    def latent_rows(self, layout: str) -> int:
        """How many rows a searched latent has in ``layout``."""
        return int(self.row_index(layout).max()) + 1

    def expand_index(self, rows: int) -> np.ndarray:
        """``row_index`` of the layout whose latents have ``rows`` rows (1: tiled, num_layers:
        full, else shared); ``ValueError`` when no layout has that many."""
        for layout in ("tiled", "full", "shared"):
            index = self.row_index(layout)
            if int(index.max()) + 1 == rows:
                return index
        raise ValueError(f"{self.name}: a latent of {rows} rows fits none of its latent layouts")

    def expand_latent(self, latent: paddle.Tensor) -> paddle.Tensor:
        """A searched latent [B, G, D] spread over the synthesis rows [B, num_layers, D]."""
        rows = latent.shape[1]
        if rows == self.num_layers:
            return latent
        if rows == 1:
            return latent.expand([-1, self.num_layers, -1])
        return paddle.index_select(latent, paddle.to_tensor(self.expand_index(rows)), axis=1)

    def map_latent(self, latent: paddle.Tensor) -> paddle.Tensor:
        """The synthesis input for a searched latent [B, L, D]."""
        return self.latent_map(latent)

    def forward(self, latent_in: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        """The image in [0, 1] for a mapped latent (see ``map_latent``) and noise."""
        return (self.synthesis(latent_in, noise) + 1) / 2

    def compiled(self, key: Hashable, compile: Callable[[nn.Layer], nn.Layer]) -> nn.Layer:
        """The synthesis network as ``compile`` makes it, made once per ``key`` (how it is compiled)
        and kept with this generator. A compiled program keeps over a gigabyte between runs at
        1024 px, and Paddle frees none of it when it is dropped: compiled once per search (a face,
        a stage of a face), a photo of many faces ran out of memory."""
        if key not in self._compiled:
            self._compiled[key] = compile(self.synthesis)
        return self._compiled[key]

    def with_synthesis(self, synthesis: nn.Layer) -> Generator:
        """The same generator (latent map, layout, noise, capabilities) around another synthesis
        network, such as a compiled copy of this one."""
        return Generator(
            synthesis,
            name=self.name,
            resolution=self.resolution,
            num_layers=self.num_layers,
            latent_dim=self.latent_dim,
            noise_resolutions=self.noise_resolutions,
            latent_map=self.latent_map,
            default_noise=self.default_noise,
            latent_radius=self.latent_radius,
            capabilities=self.capabilities,
            latent_layout=self.latent_layout,
            default_backend=self.default_backend,
            mapping=self.mapping,
            source=self.source,
        )

