"""Running a job's searches: its inputs loaded into batches of one size, each batch searched.

``load_batches`` reads the planned inputs (an unreadable one is handed to ``refuse`` and left
out); ``search_batch`` runs PULSE over one batch, each image from its own seed, its progress hooks
called after every step, and returns what came of it (the result, or why the search failed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pulse_cli.errors import describe
from pulse_cli.graphs.generator import Generator
from pulse_cli.images import InputImageError, load_input
from pulse_cli.options import SearchOptions
from pulse_cli.search import SearchResult, StepReport
from pulse_cli.strategies import run_search
from pulse_cli.upsample.plan import Item, image_seed


def load_batches(
    items: Sequence[Item], resolution: int, batch_size: int, refuse: Callable[[Path, str], None]
) -> Iterator[tuple[list[Item], np.ndarray]]:
    """Loaded inputs [B,3,r,r] (an item's crop when it has one, else its file) grouped into
    batches of at most ``batch_size`` of one size each; an unreadable input is refused once (with
    its error), however many duplicates it has."""
    pending: list[tuple[Item, np.ndarray]] = []
    refused: set[Path] = set()
    for item in items:
        if item.path in refused:
            continue
        try:
            image = item.crop.image if item.crop is not None else load_input(item.path, resolution)
        except InputImageError as exc:
            refused.add(item.path)
            refuse(item.path, str(exc))
            continue
        if pending and pending[0][1].shape != image.shape:
            yield [i for i, _ in pending], np.stack([im for _, im in pending])
            pending = []
        pending.append((item, image))
        if len(pending) == batch_size:
            yield [i for i, _ in pending], np.stack([im for _, im in pending])
            pending = []
    if pending:
        yield [i for i, _ in pending], np.stack([im for _, im in pending])


@dataclass
class BatchOutcome:
    """One batch's search: each image's seed, and the result or (when the search failed) the error
    line."""

    seeds: list[int]
    result: SearchResult | None = None
    error: str | None = None


def search_batch(
    generator: Generator,
    items: Sequence[Item],
    refs: np.ndarray,
    options: SearchOptions,
    hooks: Sequence[Callable[[StepReport], None]] = (),
) -> BatchOutcome:
    """Search one batch with the options' strategy, each image from its own seed (``image_seed``);
    a failure is returned, not raised, so one batch never stops the job."""
    seeds = [image_seed(options.seed, item.name) for item in items]

    def on_step(report: StepReport) -> None:
        for hook in hooks:
            hook(report)

    try:
        result = run_search(generator, refs, options, on_step=on_step, seeds=seeds)
    except Exception as exc:  # one batch's failure is recorded; the job goes on
        return BatchOutcome(seeds, error=f"search failed: {describe(exc)}")
    return BatchOutcome(seeds, result=result)
