"""Forward-only scoring: a Paddle objective without gradients, and choosing starting points by it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import paddle

from pulse_cli.backends.compiled import runtime_of
from pulse_cli.graphs.objective import Objective
from pulse_cli.plugins.contracts import Scorer


class Start(Protocol):
    """A candidate starting point: latent [B, G, D] (G rows in the search's latent layout) and one
    noise map per noise layer."""

    latent: np.ndarray
    noise: list[np.ndarray]



class PaddleScorer:
    """Forward-only scoring with a Paddle objective (eager or compiled), without gradients."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective

    @property
    def runtime(self) -> str:
        return runtime_of(self.objective)

    def score(
        self, latent: np.ndarray, noise: Sequence[np.ndarray], ref_im: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        with paddle.no_grad():
            _, _, total, terms = self.objective(
                paddle.to_tensor(latent), [paddle.to_tensor(n) for n in noise], paddle.to_tensor(ref_im)
            )
        return total.numpy(), terms.numpy()


def best_start(
    scorer: Scorer,
    candidates: Sequence[Start],
    ref_im: np.ndarray,
    noise_of: Callable[[Start], Sequence[paddle.Tensor]],
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Score every candidate (one batch each) and keep, per image, the lowest-loss one.

    ``noise_of`` gives the noise the search would feed for a candidate (zeros where the options
    hold a layer at zero). Returns the chosen latent, its noise maps and the totals [K, B].
    """
    totals = []
    for candidate in candidates:
        noise = [n.numpy() if isinstance(n, paddle.Tensor) else np.asarray(n) for n in noise_of(candidate)]
        total, _ = scorer.score(candidate.latent, noise, ref_im)
        totals.append(np.where(np.isfinite(total), total, np.inf))
    table = np.stack(totals)
    best = table.argmin(axis=0)
    images = np.arange(table.shape[1])
    latent = np.stack([candidates[k].latent[i] for i, k in zip(images, best)])
    noise = [
        np.stack([candidates[k].noise[j][i] for i, k in zip(images, best)])
        for j in range(len(candidates[0].noise))
    ]
    return latent, noise, table


def roles(objective: Objective, scorer: Scorer) -> dict[str, str]:
    """Which runtime does what in a search: its gradient steps, its forward-only scoring."""
    return {"gradient steps": runtime_of(objective), "forward-only scoring": scorer.runtime}
