"""Plugins are discovered through importlib.metadata entry points, built-ins included."""

from __future__ import annotations

import pytest

from pulse_cli import plugins


def test_builtin_losses_and_optimizers_come_from_entry_points(monkeypatch):
    monkeypatch.delenv(plugins.registry.ENV_VAR, raising=False)
    losses = {info.name: info for info in plugins.discover("losses")}
    assert {"L2", "L1", "GEOCROSS"} <= set(losses)
    assert all(losses[name].distribution == "pulse-cli" for name in ("L2", "L1", "GEOCROSS"))
    assert set(plugins.available("optimizers")) >= {"sgd", "adam", "sgdm", "adamax"}


def test_installed_example_plugin_registers_tv_loss(monkeypatch, tv_plugin_site):
    monkeypatch.syspath_prepend(str(tv_plugin_site))
    monkeypatch.delenv(plugins.registry.ENV_VAR, raising=False)
    info = {i.name: i for i in plugins.discover("losses")}["TV"]
    assert info.distribution == "pulse-tv-loss" and info.loaded
    assert callable(plugins.load("losses", "TV"))


def test_env_var_limits_third_party_plugins_but_keeps_builtins(monkeypatch, tv_plugin_site):
    monkeypatch.syspath_prepend(str(tv_plugin_site))
    monkeypatch.setenv(plugins.registry.ENV_VAR, "")
    assert "TV" not in plugins.available("losses")
    assert "L2" in plugins.available("losses")
    with pytest.raises(plugins.PluginError, match="disabled by PULSE_PLUGINS"):
        plugins.load("losses", "TV")
    monkeypatch.setenv(plugins.registry.ENV_VAR, "pulse-tv-loss")
    assert "TV" in plugins.available("losses")


def test_broken_plugin_is_listed_with_its_error_and_skipped(monkeypatch, mount_distribution):
    mount_distribution(
        "pulse-broken", "[pulse_cli.losses]\nBROKEN = pulse_broken:loss\n",
        "pulse_broken", "raise ImportError('needs a library that is not installed')\n",
    )
    monkeypatch.delenv(plugins.registry.ENV_VAR, raising=False)
    info = {i.name: i for i in plugins.discover("losses")}["BROKEN"]
    assert not info.loaded and "needs a library that is not installed" in info.error
    assert "BROKEN" not in plugins.available("losses")
    with pytest.raises(plugins.PluginError, match="failed to load: ImportError"):
        plugins.load("losses", "BROKEN")


def test_unknown_plugin_error_lists_the_known_ones():
    with pytest.raises(plugins.PluginError, match="unknown optimizer 'lbfgs'; known: adam, adamax, sgd"):
        plugins.load("optimizers", "lbfgs")


def test_discovery_runs_once_until_the_cache_is_cleared(monkeypatch):
    monkeypatch.delenv(plugins.registry.ENV_VAR, raising=False)
    first = plugins.discover("losses")
    assert plugins.discover("losses") is first  # cached: the entry points are not read again
    plugins.clear_cache()
    again = plugins.discover("losses")
    assert again is not first and [i.name for i in again] == [i.name for i in first]
