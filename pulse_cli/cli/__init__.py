"""The ``pulse`` command line: parses arguments, calls the library, reports."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="pulse",
    help="PULSE photo upsampling on PaddlePaddle: search a pretrained generator's latent space "
    "for a sharp face whose downscale matches a tiny one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Entry point of the ``pulse`` console script."""
    app()
