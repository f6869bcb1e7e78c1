"""The pretrained generators, as the ``pulse_cli.generators`` plugins name them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pulse_cli import plugins
from pulse_cli.errors import first_line
from pulse_cli.graphs.generator import Generator
from pulse_cli.plugins.contracts import GeneratorSpec

DEFAULT_MODEL = "mobile-stylegan-ffhq"


class ModelError(RuntimeError):
    """A generator that cannot be had: unknown, broken plugin, or weights missing or unreadable."""


def generator_specs() -> list[plugins.PluginInfo]:
    """Every generator entry point, loaded or not, with its distribution and load error."""
    return plugins.discover("generators")


def get_spec(name: str) -> GeneratorSpec:
    """The generator plugin called ``name``; a ``ModelError`` naming the known ones otherwise."""
    try:
        return plugins.load("generators", name)
    except plugins.PluginError as exc:
        raise ModelError(str(exc)) from None


def load_generator(name: str, weights: Path | None = None, gaussian_fit: Path | None = None) -> Generator:
    """The ready generator ``name``; its weights are fetched or found as its plugin says.

    Any failure to get the weights (missing files, a failed download, a damaged file) becomes a
    ``ModelError`` whose message says what is needed.
    """
    spec = get_spec(name)
    try:
        return spec.load(weights=weights, gaussian_fit=gaussian_fit)
    except (OSError, ValueError, LookupError, RuntimeError) as exc:
        raise ModelError(first_line(exc)) from exc


def build_generator(name: str, **config: Any) -> Generator:
    """Generator ``name``'s architecture with random weights (``GeneratorSpec.build``); a
    ``ModelError`` for an unknown model or a config its architecture cannot take."""
    spec = get_spec(name)
    try:
        return spec.build(**config)
    except (TypeError, ValueError) as exc:
        raise ModelError(first_line(exc)) from exc
