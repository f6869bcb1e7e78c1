"""``pulse fit-gaussian MAPPING.pt``: PULSE's gaussian fit of a StyleGAN mapping network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.markup import escape

from pulse_cli.atomic import atomic_write
from pulse_cli.cli.app import app
from pulse_cli.cli.common import err, fail, out
from pulse_cli.models.gaussian_fit import cached_gaussian_fit
from pulse_cli.weights import WeightsError, save_pdparams

SUFFIXES = (".npz", ".pdparams")


@app.command("fit-gaussian")
def fit_gaussian(
    mapping: Annotated[Path, typer.Argument(help="The StyleGAN mapping network (PULSE's mapping.pt).")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write the fit (.npz or .pdparams) "
                     "\\[default: gaussian_fit.npz beside MAPPING]", show_default=False),
    ] = None,
    samples: Annotated[int, typer.Option(help="Latent samples to fit over (PULSE: 1,000,000).")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Seed of the samples.")] = 0,
) -> None:
    """Fit the mean and std of LeakyReLU(5)(mapping(z)) per dimension, as PULSE does.

    The fit is also cached, so a StyleGAN loaded from this mapping network later reuses it.

    Example: pulse fit-gaussian mapping.pt -o gaussian_fit.npz
    """
    target = output or mapping.with_name("gaussian_fit.npz")
    if target.suffix not in SUFFIXES:
        fail(f"{target}: the fit is written as {' or '.join(SUFFIXES)}")
    if samples < 2:
        fail(f"--samples must be at least 2, got {samples}")
    err.print(f"fitting over {samples:,} samples of {escape(str(mapping))} …")
    try:
        fit = cached_gaussian_fit(mapping, samples=samples, seed=seed)
        arrays = {"mean": fit.mean.numpy(), "std": fit.std.numpy()}
        if target.suffix == ".npz":
            with atomic_write(target, "wb") as file:
                np.savez(file, **arrays)
        else:
            save_pdparams(arrays, target)
    except (WeightsError, OSError) as exc:
        fail(str(exc))
    out.print(
        f"wrote {escape(str(target))}: mean of mean {arrays['mean'].mean():.4f}, "
        f"mean of std {arrays['std'].mean():.4f}"
    )
