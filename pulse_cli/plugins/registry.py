"""Discovers and loads the ``pulse_cli.*`` entry points.

pulse-cli registers its own generators, losses and optimizers through the same entry points a
third-party distribution uses. ``PULSE_PLUGINS`` (comma-separated distribution names) limits which
third-party distributions load; pulse-cli's own entry points always load. Unset, everything loads;
empty, only the built-ins do.

Discovery runs once per process for each group, ``PULSE_PLUGINS`` value and ``sys.path`` (where
installed distributions are found); ``clear_cache()`` forgets what was found. What each group's
objects must be is in ``pulse_cli.plugins.contracts``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

GROUPS = {
    "generators": "pulse_cli.generators",
    "losses": "pulse_cli.losses",
    "optimizers": "pulse_cli.optimizers",
    "backends": "pulse_cli.backends",
}
ENV_VAR = "PULSE_PLUGINS"
OWN_DISTRIBUTION = "pulse-cli"


class PluginError(LookupError):
    """A plugin that is unknown, disabled, or failed to load."""


@dataclass
class PluginInfo:
    """One entry point: where it comes from and whether it loaded."""

    group: str
    name: str
    value: str
    distribution: str
    enabled: bool
    error: str | None = None
    obj: Any = None

    @property
    def loaded(self) -> bool:
        return self.obj is not None


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _allowed_distributions() -> set[str] | None:
    value = os.environ.get(ENV_VAR)
    if value is None:
        return None
    return {_normalise(part) for part in value.split(",") if part.strip()}


def _distribution_name(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    return dist.metadata["Name"] if dist is not None else "?"


_FOUND: dict[tuple[str, str | None, tuple[str, ...]], list[PluginInfo]] = {}


def clear_cache() -> None:
    """Forget every discovery, so the next one reads the installed entry points again."""
    _FOUND.clear()


def discover(group: str) -> list[PluginInfo]:
    """Every entry point of a group (one of ``GROUPS``), loaded where enabled; cached."""
    if group not in GROUPS:
        raise PluginError(f"unknown plugin group {group!r}; known: {', '.join(GROUPS)}")
    key = (group, os.environ.get(ENV_VAR), tuple(sys.path))
    if key not in _FOUND:
        _FOUND[key] = _discover(group)
    return _FOUND[key]


def _discover(group: str) -> list[PluginInfo]:
    allowed = _allowed_distributions()
    infos: dict[str, PluginInfo] = {}
    for entry_point in entry_points(group=GROUPS[group]):
        dist = _distribution_name(entry_point)
        own = _normalise(dist) == OWN_DISTRIBUTION
        enabled = own or allowed is None or _normalise(dist) in allowed
        info = PluginInfo(group, entry_point.name, entry_point.value, dist, enabled)
        if enabled:
            try:
                info.obj = entry_point.load()
            except Exception as exc:  # a broken plugin is reported, never fatal
                info.error = f"{type(exc).__name__}: {exc}"
        if entry_point.name in infos and infos[entry_point.name].loaded and not own:
            continue  # a third party cannot shadow a loaded built-in of the same name
        infos[entry_point.name] = info
    return sorted(infos.values(), key=lambda info: info.name)


def available(group: str) -> dict[str, Any]:
    """The loaded plugins of a group by name."""
    return {info.name: info.obj for info in discover(group) if info.loaded}


def load(group: str, name: str) -> Any:
    """One plugin's object; a clear error when it is unknown, disabled or broken."""
    infos = {info.name: info for info in discover(group)}
    info = infos.get(name)
    if info is None:
        known = ", ".join(sorted(infos)) or "none"
        raise PluginError(f"unknown {group[:-1]} {name!r}; known: {known}")
    if not info.enabled:
        raise PluginError(
            f"{group[:-1]} {name!r} from {info.distribution} is disabled by {ENV_VAR}={os.environ[ENV_VAR]!r}"
        )
    if info.error:
        raise PluginError(f"{group[:-1]} {name!r} from {info.distribution} failed to load: {info.error}")
    return info.obj
