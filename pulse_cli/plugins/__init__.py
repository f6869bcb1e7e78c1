"""Entry-point plugins: generators, losses and optimizers, built-in or third-party alike."""

from pulse_cli.plugins.registry import (
    GROUPS,
    PluginError,
    PluginInfo,
    available,
    discover,
    load,
)

__all__ = ["GROUPS", "PluginError", "PluginInfo", "available", "discover", "load"]
