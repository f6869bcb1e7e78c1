"""``pulse plugins list``: every generator, loss, optimizer and backend plugin, where it comes from, and
whether it loaded."""

from __future__ import annotations

import os

import typer
from rich.markup import escape
from rich.table import Table

from pulse_cli import plugins
from pulse_cli.cli.app import app
from pulse_cli.cli.common import out

plugins_app = typer.Typer(
    help="Entry-point plugins: generators, losses, optimizers, backends.", no_args_is_help=True
)
app.add_typer(plugins_app, name="plugins")


def _status(info: plugins.PluginInfo) -> str:
    if info.error:
        return f"[red]error: {escape(info.error)}[/]"
    if not info.enabled:
        return f"[yellow]disabled by {plugins.registry.ENV_VAR}[/]"
    return "[green]loaded[/]"


@plugins_app.command("list")
def list_plugins() -> None:
    """List each plugin with its group, source distribution, and load error if any.

    Third-party plugins load unless PULSE_PLUGINS names the distributions
    to allow (PULSE_PLUGINS="" loads only the built-ins).

    Example: pulse plugins list
    """
    table = Table("group", "name", "distribution", "status")
    for group in plugins.GROUPS:
        for info in plugins.discover(group):
            table.add_row(group, escape(info.name), escape(info.distribution), _status(info))
    out.print(table)
    allowed = os.environ.get(plugins.registry.ENV_VAR)
    if allowed is not None:
        out.print(f"{plugins.registry.ENV_VAR}={escape(allowed)!r}: other third-party plugins are not loaded")
