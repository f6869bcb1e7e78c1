"""The Typer application that every ``pulse`` command module registers itself on."""

import typer

app = typer.Typer(
    name="pulse",
    help="PULSE photo upsampling on PaddlePaddle: search a pretrained generator's latent space "
    "for a sharp face whose downscale matches a tiny one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
