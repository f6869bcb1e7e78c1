"""Entry-point plugins: generators, losses, optimizers and backends, built-in or third-party alike;
their contracts are in ``pulse_cli.plugins.contracts``."""

from pulse_cli.plugins.registry import (
    GROUPS,
    PluginError,
    PluginInfo,
    available,
    clear_cache,
    discover,
    load,
)

__all__ = ["GROUPS", "PluginError", "PluginInfo", "available", "clear_cache", "discover", "load"]
