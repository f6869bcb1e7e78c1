"""Parity checks: an exported graph is trusted only once it gives the eager Paddle result.

Every runtime that will run a graph (``paddle.jit.load``, Paddle Inference, onnxruntime) is fed
the same seeded random inputs as the eager layer; each output must agree within
``atol + rtol * max|reference|``. The numbers of every check are kept for the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from pulse_cli.export import ExportError
from pulse_cli.export.graphs import ExportGraph

RTOL = 1e-4
ATOL = 1e-5


class Runner(Protocol):
    """A loaded graph: named numpy inputs in, outputs in the graph's order out."""

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


@dataclass
class ParityCheck:
    """One graph in one runtime against eager Paddle, on ``batch`` random inputs."""

    graph: str
    runtime: str
    batch: int
    max_abs_error: float
    max_rel_error: float  # the largest error over the largest reference value, over the outputs
    worst_output: str
    passed: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"{self.graph} in {self.runtime}: max abs error {self.max_abs_error:.3g} "
            f"(relative {self.max_rel_error:.3g}, worst output {self.worst_output}) {verdict}"
        )


class ParityError(ExportError):
    """An exported graph whose results differ from eager Paddle by more than the tolerance."""

    def __init__(self, checks: Sequence[ParityCheck], rtol: float, atol: float) -> None:
        self.checks = list(checks)
        failed = "; ".join(check.describe() for check in checks if not check.passed)
        super().__init__(f"parity check failed (tolerance {atol:g} + {rtol:g}*max|reference|): {failed}")


def compare(
    graph: ExportGraph,
    runtime: str,
    expected: Sequence[np.ndarray],
    got: Sequence[np.ndarray],
    batch: int,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> ParityCheck:
    """How far ``got`` is from the eager ``expected`` outputs of ``graph``."""
    names = [spec.name for spec in graph.outputs]
    if len(got) != len(expected):
        return ParityCheck(graph.name, runtime, batch, float("inf"), float("inf"), "output count", False)
    worst, worst_abs, worst_rel, passed = names[0], 0.0, 0.0, True
    for name, ref, out in zip(names, expected, got):
        if np.shape(out) != np.shape(ref):
            return ParityCheck(graph.name, runtime, batch, float("inf"), float("inf"), f"{name} shape", False)
        error = float(np.max(np.abs(np.asarray(out, np.float64) - ref))) if ref.size else 0.0
        if not np.isfinite(error):
            error = float("inf")
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        relative = error / scale if scale > 0 else error
        passed = passed and error <= atol + rtol * scale
        if relative >= worst_rel:
            worst, worst_rel = name, relative
        worst_abs = max(worst_abs, error)
    return ParityCheck(graph.name, runtime, batch, worst_abs, worst_rel, worst, passed)


def check_parity(
    graph: ExportGraph,
    runners: Mapping[str, Runner],
    batch: int = 2,
    seed: int = 0,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> list[ParityCheck]:
    """Run ``graph`` eagerly and in every runner on the same random inputs; raise ``ParityError``
    when any runner is out of tolerance, else return the checks."""
    feed = graph.random_inputs(batch, seed)
    expected = graph.run_dygraph(feed)
    checks = [
        compare(graph, runtime, expected, runner.run(feed), batch, rtol, atol)
        for runtime, runner in runners.items()
    ]
    if not all(check.passed for check in checks):
        raise ParityError(checks, rtol, atol)
    return checks
