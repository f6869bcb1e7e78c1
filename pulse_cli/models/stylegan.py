"""StyleGAN (PULSE's generator): building it from the user's files, and the FFHQ model entry."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import paddle

from pulse_cli.cache import cache_dir
from pulse_cli.graphs.generator import Capabilities, GaussianFit, GaussianLatentMap, Generator
from pulse_cli.graphs.stylegan import GSynthesis
from pulse_cli.models.gaussian_fit import cached_gaussian_fit, load_gaussian_fit
from pulse_cli.weights import load_state_dict, read_weights

SYNTHESIS_NAMES = ("synthesis.pt", "synthesis.pdparams", "stylegan.pdparams")
FIT_NAMES = ("gaussian_fit.pt", "gaussian_fit.pdparams", "gaussian_fit.npz")
MAPPING_NAMES = ("mapping.pt", "mapping.pdparams")


class WeightsMissingError(FileNotFoundError):
    """A pretrained model whose weight files are not where they were looked for."""


def num_layers(resolution: int) -> int:
    """Latent layers of a StyleGAN synthesis network at this resolution (18 at 1024)."""
    return 2 * int(math.log2(resolution)) - 2


def noise_resolutions(resolution: int) -> list[int]:
    """The side of each noise input, as PULSE draws them: 4, 4, 8, 8, …, resolution, resolution."""
    return [2 ** (i // 2 + 2) for i in range(num_layers(resolution))]


# Its gradients are right with oneDNN's backward kernels, and come faster (see backends.compiled).
CAPABILITIES = Capabilities(onednn_backward=True, compiled_ops=True)


class StyleGAN:
    """Builds PULSE-ready StyleGAN generators."""

    @staticmethod
    def build(
        synthesis: GSynthesis, fit: GaussianFit, *, name: str = "stylegan", source: str = ""
    ) -> Generator:
        """A generator around a synthesis network and its gaussian fit (PULSE's latent map)."""
        resolution = synthesis.resolution
        return Generator(
            synthesis,
            name=name,
            resolution=resolution,
            num_layers=num_layers(resolution),
            latent_dim=512,
            noise_resolutions=noise_resolutions(resolution),
            latent_map=GaussianLatentMap(fit),
            capabilities=CAPABILITIES,
            source=source,
        )

    @classmethod
    def from_files(
        cls,
        synthesis: str | Path,
        gaussian_fit: str | Path | None = None,
        mapping: str | Path | None = None,
        resolution: int = 1024,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        name: str = "stylegan",
    ) -> Generator:
        """A generator from a synthesis state dict and a gaussian fit (or the mapping to fit one).

        Files are PULSE's PyTorch files (zip or legacy format) or Paddle ``.pdparams``.
        """
        network = GSynthesis(resolution=resolution, fmap_base=fmap_base, fmap_max=fmap_max)
        load_state_dict(network, read_weights(synthesis), source=synthesis)
        if gaussian_fit is not None:
            fit = load_gaussian_fit(gaussian_fit)
        elif mapping is not None:
            fit = cached_gaussian_fit(mapping)
        else:
            raise WeightsMissingError(f"{synthesis}: a gaussian fit or a mapping network is needed with it")
        return cls.build(network, fit, name=name, source=str(synthesis))


def _find(folders: tuple[Path, ...], names: tuple[str, ...]) -> Path | None:
    """The first of ``names`` that exists in the first folder holding one."""
    return next((f / name for f in folders for name in names if (f / name).is_file()), None)


def _holds(folder: Path, shown: int = 5) -> str:
    """What a searched folder holds, for a message: its first few names, or that it is empty or absent."""
    if not folder.is_dir():
        return "it does not exist"
    names = sorted(path.name for path in folder.iterdir())
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"it holds {', '.join(names[:shown])}{more}" if names else "it is empty"


@dataclass(frozen=True)
class StyleGANFFHQ:
    """PULSE's StyleGAN trained on FFHQ at 1024²: the user brings the files."""

    name: str = "stylegan-ffhq"
    resolution: int = 1024
    description: str = "StyleGAN 1 (FFHQ, 1024x1024), PULSE's generator; weights supplied by the user"
    source: str = (
        "PULSE release (github.com/adamian98/pulse): synthesis.pt + gaussian_fit.pt or mapping.pt; "
        "or the Paddle reproduction's stylegan.pdparams + gaussian_fit; not redistributed, hashes not pinned"
    )
    fixed_resolution: bool = False
    capabilities: Capabilities = CAPABILITIES
    small_config: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({"resolution": 32, "fmap_base": 64, "fmap_max": 16})
    )

    def build(
        self, resolution: int = 1024, fmap_base: int = 8192, fmap_max: int = 512, seed: int = 0
    ) -> Generator:
        """The architecture with random weights (any power-of-two ``resolution``), its gaussian fit
        the identity (mean 0, std 1): for benchmarks and tests without the weights."""
        paddle.seed(seed)
        network = GSynthesis(resolution=resolution, fmap_base=fmap_base, fmap_max=fmap_max)
        fit = GaussianFit(mean=paddle.zeros([512]), std=paddle.ones([512]))
        return StyleGAN.build(network, fit, name=f"{self.name}-random", source="random weights")

    def weights_dir(self) -> Path:
        """Where the files are looked for when no path is given."""
        return cache_dir() / self.name

    def load(self, weights: Path | None = None, gaussian_fit: Path | None = None) -> Generator:
        """The FFHQ generator from ``weights`` (a synthesis file or a folder) or the cache folder."""
        if weights is not None and not Path(weights).exists():
            raise WeightsMissingError(f"{weights}: no such file or folder (given as {self.name}'s weights)")
        folder = Path(weights) if weights is not None and Path(weights).is_dir() else self.weights_dir()
        synthesis = Path(weights) if weights is not None and Path(weights).is_file() else None
        synthesis = synthesis or _find((folder,), SYNTHESIS_NAMES)
        if synthesis is None:
            raise WeightsMissingError(
                f"{self.name} needs its weights: put {' or '.join(SYNTHESIS_NAMES)} and "
                f"{' or '.join(FIT_NAMES + MAPPING_NAMES)} in {folder} ({_holds(folder)}), "
                "or pass --weights FILE_OR_DIR"
            )
        folders = tuple(dict.fromkeys((folder, synthesis.parent)))
        fit = gaussian_fit or _find(folders, FIT_NAMES)
        mapping = None if fit else _find(folders, MAPPING_NAMES)
        if fit is None and mapping is None:
            searched = " or ".join(f"{f} ({_holds(f)})" for f in folders)
            raise WeightsMissingError(
                f"{self.name}: found {synthesis} but no gaussian fit ({', '.join(FIT_NAMES)}) or mapping "
                f"network ({', '.join(MAPPING_NAMES)}) in {searched}; pass --gaussian-fit FILE"
            )
        return StyleGAN.from_files(synthesis, gaussian_fit=fit, mapping=mapping, name=self.name)


FFHQ = StyleGANFFHQ()
