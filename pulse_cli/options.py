"""The options of one PULSE search, with the defaults of PULSE's run.py."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, replace
from typing import Any

NOISE_TYPES = ("zero", "fixed", "trainable")
LR_SCHEDULES = ("fixed", "linear1cycle", "linear1cycledrop")
LATENT_LAYOUTS = ("full", "tiled", "shared")  # pulse_cli.graphs.generator.LatentLayout
STRATEGIES = ("pulse", "faithful")  # pulse_cli.strategies
# What `pulse upsample`, `pulse demo` and `pulse bench`'s face search with unless told: the study's
# choice (README, "Faithful faces"). SearchOptions' own default stays PULSE's, as all its defaults.
TOOL_STRATEGY = "faithful"


@dataclass(frozen=True)
class SearchOptions:
    """Every knob of PULSE's run.py that shapes the latent search, and how it is run.

    ``backend`` names how the forward pass runs (eager Paddle, compiled Paddle, or onnxruntime
    for forward-only scoring: a name in ``pulse_cli.backends``' registry, checked there); ``None``
    means the generator's declared default (``Generator.default_backend``), else the registry's;
    ``starts`` is how many random starting points are scored before
    the search starts from the best; ``early_stop`` ends a search once every image meets eps.

    ``latent_layout`` is how many latent vectors are searched and which synthesis rows each
    feeds (``full``, ``tiled``, ``shared``: ``pulse_cli.graphs.generator.LatentLayout``); ``None``
    means the generator's declared default. ``tile_latent`` is PULSE's name for ``tiled``.

    ``strategy`` is how the search is run: ``pulse`` (the paper's) or ``faithful`` (the same step
    opened in stages: ``pulse_cli.faithful``).

    ``bad_noise_layers`` is PULSE's dot-separated list ("17"); ``None`` means the
    generator's last noise layer, which is PULSE's 17 for an 18-layer StyleGAN.
    """

    seed: int | None = None
    loss_str: str = "100*L2+0.05*GEOCROSS"
    eps: float = 2e-3
    noise_type: str = "trainable"
    num_trainable_noise_layers: int = 5
    tile_latent: bool = False
    latent_layout: str | None = None
    bad_noise_layers: str | None = None
    opt_name: str = "adam"
    learning_rate: float = 0.4
    steps: int = 100
    lr_schedule: str = "linear1cycledrop"
    save_intermediate: bool = False
    batch_size: int = 1
    duplicates: int = 1
    early_stop: bool = False
    backend: str | None = None
    starts: int = 1
    strategy: str = "pulse"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown search strategy {self.strategy!r}; known: {', '.join(STRATEGIES)}")
        if self.noise_type not in NOISE_TYPES:
            raise ValueError(f"unknown noise type {self.noise_type!r}; known: {', '.join(NOISE_TYPES)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr schedule {self.lr_schedule!r}; known: {', '.join(LR_SCHEDULES)}")
        if self.latent_layout is not None and self.latent_layout not in LATENT_LAYOUTS:
            raise ValueError(
                f"unknown latent layout {self.latent_layout!r}; known: {', '.join(LATENT_LAYOUTS)}"
            )
        if self.tile_latent and self.latent_layout not in (None, "tiled"):
            raise ValueError(
                f"--tile-latent is the tiled layout; it contradicts --latent-layout {self.latent_layout}"
            )
        for name in ("steps", "batch_size", "duplicates", "starts"):
            _check_int(name, getattr(self, name), 1)
        _check_int("num_trainable_noise_layers", self.num_trainable_noise_layers, 0)
        if self.seed is not None:
            _check_int("seed", self.seed, 0)
        if not _finite(self.eps) or self.eps < 0:
            raise ValueError(f"eps must be a finite number of at least 0, got {self.eps}")
        if not _finite(self.learning_rate) or self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be a finite number above 0, got {self.learning_rate}")
        if self.bad_noise_layers:
            try:
                [int(layer) for layer in self.bad_noise_layers.split(".")]
            except ValueError:
                raise ValueError(
                    "bad_noise_layers must be dot-separated layer numbers like '17', "
                    f"got {self.bad_noise_layers!r}"
                ) from None

    def bad_layers(self, num_noise_layers: int) -> set[int]:
        """The noise layers that are held at zero for a generator with this many noise layers."""
        if self.bad_noise_layers is None:
            return {num_noise_layers - 1} if num_noise_layers else set()
        if not self.bad_noise_layers:
            return set()
        return {int(layer) for layer in self.bad_noise_layers.split(".")}

    def layout(self, generator_default: str) -> str:
        """The latent layout searched: the one asked for, else the generator's default."""
        return "tiled" if self.tile_latent else self.latent_layout or generator_default

    def with_(self, **changes: Any) -> SearchOptions:
        """A copy with some options changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON-able values."""
        return asdict(self)


def _finite(value: Any) -> bool:
    """Whether ``value`` is a real number that is neither NaN nor infinite (bools are not numbers)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_int(name: str, value: Any, least: int) -> None:
    """Refuse an option that is not a whole number of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{name} must be at least {least} (a whole number), got {value!r}")
