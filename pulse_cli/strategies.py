"""The latent search strategies, by the name ``SearchOptions.strategy`` gives: ``pulse``, the
paper's search (``pulse_cli.search.search``), and ``faithful``, the same step opened in stages
(``pulse_cli.faithful.faithful_search``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pulse_cli import search as pulse
from pulse_cli.faithful import FaithfulPlan, faithful_search
from pulse_cli.graphs.generator import Generator
from pulse_cli.options import SearchOptions
from pulse_cli.search import SearchResult, StepReport, search


def resolved_options(model: Generator, options: SearchOptions) -> SearchOptions:
    """``options`` as the strategy runs them, what they leave open filled in, so a report records
    what ran: the generator's default backend, and for PULSE's search its default layout
    (``pulse_cli.search.resolved_options``); the faithful one ends in W+ unless told."""
    if options.strategy == "faithful":
        options = options.with_(latent_layout=options.layout(FaithfulPlan().fine_layout))
    return pulse.resolved_options(model, options)


def run_search(
    model: Generator,
    ref_im: np.ndarray,
    options: SearchOptions,
    on_step: Callable[[StepReport], None] | None = None,
    seeds: Sequence[int] | None = None,
) -> SearchResult:
    """Search ``ref_im`` [B,3,r,r] with the strategy ``options.strategy`` names."""
    if options.strategy == "faithful":
        return faithful_search(model, ref_im, options, on_step=on_step, seeds=seeds)
    return search(model, ref_im, options, on_step=on_step, seeds=seeds)
