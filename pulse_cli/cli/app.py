"""The Typer application that every ``pulse`` command module registers itself on."""

from typing import Annotated

import typer

app = typer.Typer(
    name="pulse",
    help="PULSE photo upsampling on PaddlePaddle: search a pretrained generator's latent space "
    "for a sharp face whose downscale matches a tiny one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def options(
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Show what Paddle and other libraries log (hidden by default).")
    ] = False,
) -> None:
    """The options before the command's name. ``--verbose`` is acted on when ``pulse_cli.cli`` is
    imported (``verbose_requested``), before Paddle is: it is declared here for parsing and help."""
