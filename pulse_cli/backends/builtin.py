"""The built-in backends: how a search's gradient steps and forward-only scoring run.

- ``dygraph``: the ``Objective`` as it is, in eager Paddle: the reference behaviour.
- ``static``: the synthesis network, where nearly all the time goes, is compiled with
  ``paddle.jit.to_static`` (``backends.compiled``); gradient steps and forward-only scoring run
  through it.
- ``onnx``: forward-only scoring (``--starts``, and the final scoring of each output) runs an
  exported scorer in onnxruntime, on the device Paddle runs on (``export.onnx.providers``); the
  gradient steps run in eager Paddle.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulse_cli.backends.compiled import compiled_objective
from pulse_cli.backends.onnx import onnx_scorer
from pulse_cli.backends.scoring import PaddleScorer, roles
from pulse_cli.graphs.objective import Objective
from pulse_cli.plugins.contracts import Scorer


@dataclass(frozen=True)
class DygraphBackend:
    """Eager Paddle for everything."""

    name: str = "dygraph"
    description: str = "eager Paddle: the reference"
    steps_own: bool = True
    rescores: bool = False

    def objective(self, objective: Objective) -> Objective:
        return objective

    def scorer(self, objective: Objective) -> Scorer:
        return PaddleScorer(objective)

    def roles(self, objective: Objective, scorer: Scorer) -> dict[str, str]:
        return roles(objective, scorer)


@dataclass(frozen=True)
class StaticBackend(DygraphBackend):
    """The synthesis network compiled (to_static, oneDNN on CPU) for steps and scoring alike."""

    name: str = "static"
    description: str = "Paddle to_static (oneDNN on CPU) for the synthesis network"
    first_use: str = "the first search step also compiles the synthesis network (to_static, oneDNN kernels)"

    def objective(self, objective: Objective) -> Objective:
        return compiled_objective(objective)


@dataclass(frozen=True)
class OnnxBackend(DygraphBackend):
    """Eager gradient steps; forward-only scoring, and the rescoring of outputs, in onnxruntime."""

    name: str = "onnx"
    description: str = "eager Paddle steps; scoring in onnxruntime"
    steps_own: bool = False
    rescores: bool = True

    def scorer(self, objective: Objective) -> Scorer:
        return onnx_scorer(objective)
