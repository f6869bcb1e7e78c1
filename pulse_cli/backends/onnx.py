"""The ``onnx`` backend's scorer: the objective exported to ONNX and run in onnxruntime, checked
against the eager objective before it is used, and kept per model and loss for later searches."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from paddle import nn

from pulse_cli.export import onnx as onnx_export
from pulse_cli.export.graphs import scorer_graph
from pulse_cli.export.verify import check_parity
from pulse_cli.graphs.objective import Objective


class OnnxScorer:
    """Forward-only scoring with the objective exported to ONNX, in onnxruntime."""

    def __init__(self, objective: Objective) -> None:
        graph = scorer_graph(objective)
        with tempfile.TemporaryDirectory(prefix="pulse-scorer-") as scratch:
            path = onnx_export.save_model(onnx_export.graph_to_onnx(graph), Path(scratch) / graph.name)
            self.graph = onnx_export.OnnxGraph(path)  # the session holds the model: the file may go
        self.runtime = f"onnxruntime ({self.graph.provider})"
        check_parity(
            graph, {self.runtime: self.graph}, batch=1
        )  # exported graphs are never trusted unchecked
        self.generator = objective.generator
        self.any_batch = objective.generator.capabilities.any_batch

    def score(
        self, latent: np.ndarray, noise: Sequence[np.ndarray], ref_im: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        latent = np.asarray(latent, np.float32)
        if latent.shape[1] != self.generator.num_layers:  # tiled or shared: the graph takes every row
            latent = latent[:, self.generator.expand_index(latent.shape[1])]
        feed = {"latent": latent, "ref_im": np.asarray(ref_im, np.float32)}
        feed.update({f"noise_{i}": np.asarray(n, np.float32) for i, n in enumerate(noise)})
        if self.any_batch:
            _, _, total, terms = self.graph.run(feed)
            return total, terms
        # a graph built for one image at a time (``Capabilities.any_batch`` false): row by row
        rows = [self.graph.run({key: v[i : i + 1] for key, v in feed.items()}) for i in range(len(latent))]
        return np.concatenate([row[2] for row in rows]), np.concatenate([row[3] for row in rows], axis=1)


@dataclass
class _CachedScorer:
    generator: nn.Layer
    scorer: OnnxScorer


_ONNX_SCORERS: dict[tuple[object, ...], _CachedScorer] = {}
MAX_CACHED_SCORERS = 2


def onnx_scorer(objective: Objective) -> OnnxScorer:
    """The ONNX scorer of ``objective``, kept per (generator, factor, loss, eps) for later searches."""
    key = (
        id(objective.generator), objective.downsample.factor, tuple(objective.term_names),
        tuple(objective.weights), objective.eps,
    )  # fmt: skip
    cached = _ONNX_SCORERS.get(key)
    if cached is None or cached.generator is not objective.generator:
        while len(_ONNX_SCORERS) >= MAX_CACHED_SCORERS:
            _ONNX_SCORERS.pop(next(iter(_ONNX_SCORERS)))
        cached = _ONNX_SCORERS[key] = _CachedScorer(objective.generator, OnnxScorer(objective))
    return cached.scorer
