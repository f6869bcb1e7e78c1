"""``pulse models list | pull | info | convert``: the pretrained generators and their weight files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pulse_cli.cli.app import app
from pulse_cli.cli.common import fail, out
from pulse_cli.models.registry import (
    DEFAULT_MODEL,
    ModelError,
    build_generator,
    generator_specs,
    get_spec,
    load_generator,
)
from pulse_cli.weights import WeightsError, read_weights, save_pdparams

models_app = typer.Typer(
    help="The pretrained generators: list, fetch, describe, convert weights.", no_args_is_help=True
)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_models() -> None:
    """List the generator plugins with their resolution and where they come from.

    Example: pulse models list
    """
    table = Table("name", "resolution", "distribution", "description")
    for info in generator_specs():
        name = info.name + (" (default)" if info.name == DEFAULT_MODEL else "")
        if info.error or not info.loaded:
            status = info.error or "disabled by PULSE_PLUGINS"
            table.add_row(escape(name), "-", escape(info.distribution), f"[red]{escape(status)}[/]")
        else:
            spec = info.obj
            description = escape(spec.description)
            table.add_row(escape(name), str(spec.resolution), escape(info.distribution), description)
    out.print(table)


@models_app.command("info")
def info(name: Annotated[str, typer.Argument(help="Model name, e.g. dcgan-digiface.")]) -> None:
    """Describe one model: resolution, accepted input sizes, the latent layout and backend a search of
    it uses unless told, and the source of its weights.

    Example: pulse models info stylegan-ffhq
    """
    from pulse_cli.faces.sizes import searched_sizes
    from pulse_cli.images import valid_sides
    from pulse_cli.options import TOOL_STRATEGY, SearchOptions
    from pulse_cli.strategies import resolved_options

    try:
        spec = get_spec(name)
        # the architecture declares the defaults its pretrained model has; no weights needed
        generator = build_generator(name, **spec.small_config)
        searched = resolved_options(generator, SearchOptions())  # PULSE's strategy
        tool = resolved_options(generator, SearchOptions(strategy=TOOL_STRATEGY))
    except ModelError as exc:
        fail(str(exc))
    face_sides = "/".join(str(side) for side in sorted(searched_sizes(spec.resolution)))
    sides = ", ".join(f"{side}x{side}" for side in valid_sides(spec.resolution))
    out.print(f"[bold]{escape(spec.name)}[/]: {escape(spec.description)}")
    out.print(f"output: {spec.resolution}x{spec.resolution}")
    out.print(f"inputs: aligned square faces of {sides}; larger squares are downscaled and faces are found "
              f"in photos, each searched at the largest of {face_sides} px its photo holds unless "
              "--input-size")
    out.print(f"search: strategy {tool.strategy} unless --strategy (latent layout {tool.latent_layout}; "
              f"with --strategy pulse, latent layout {searched.latent_layout} unless --latent-layout), "
              f"backend {searched.backend} unless --backend")
    out.print(f"weights: {escape(spec.source)}")


@models_app.command("pull")
def pull(
    name: Annotated[str, typer.Argument(help="Model name, e.g. dcgan-digiface.")],
    weights: Annotated[Path | None, typer.Option(help="Weights file or folder to load instead.")] = None,
    gaussian_fit: Annotated[Path | None, typer.Option(help="StyleGAN gaussian fit file.")] = None,
) -> None:
    """Fetch (if needed), convert and check a model's weights, so later runs work offline.

    Example: pulse models pull dcgan-digiface
    """
    try:
        generator = load_generator(name, weights=weights, gaussian_fit=gaussian_fit)
    except ModelError as exc:
        fail(str(exc))
    out.print(f"{escape(generator.name)} is ready ({generator.resolution}x{generator.resolution}, "
              f"from {escape(generator.source)})")


@models_app.command("convert")
def convert(
    file: Annotated[Path, typer.Argument(help="A PyTorch checkpoint (.pt/.pth/.tar), .pdparams or .npz.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .pdparams file to write.")],
    key: Annotated[
        str | None, typer.Option(help="Entry holding the state dict, e.g. netG_state_dict.")
    ] = None,
) -> None:
    """Convert a weights file to Paddle's .pdparams without torch (and without running its code).

    Example: pulse models convert synthesis.pt -o synthesis.pdparams
    """
    if output.suffix != ".pdparams":
        fail(f"{output}: the output must be a .pdparams file")
    try:
        state = read_weights(file, key=key)
        save_pdparams(state, output)
    except (WeightsError, OSError) as exc:
        fail(str(exc))
    total = sum(int(array.size) for array in state.values())
    out.print(f"wrote {escape(str(output))}: {len(state)} tensors, {total:,} values")
