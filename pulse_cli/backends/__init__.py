"""How a search's forward pass runs: one ``Backend`` object per way (``registry``), each saying
what its gradient steps run through, what scores without gradients, whether outputs are scored
again and what it reports in ``roles``. Exported scorers are checked against the eager objective
before they are used."""

from pulse_cli.backends.compiled import CompiledSynthesis, compiled_objective, runtime_of
from pulse_cli.backends.registry import (
    DEFAULT,
    BackendError,
    available_backends,
    backend_names,
    get_backend,
)
from pulse_cli.backends.scoring import PaddleScorer, Start, best_start, roles
from pulse_cli.devices import onednn_available
from pulse_cli.graphs.objective import Objective
from pulse_cli.plugins.contracts import Backend, Scorer


def forward_scorer(objective: Objective, backend: str) -> Scorer:
    """What scores starting points (and outputs) without gradients for the backend ``backend``."""
    return get_backend(backend).scorer(objective)


__all__ = [
    "DEFAULT", "Backend", "BackendError", "CompiledSynthesis", "PaddleScorer", "Scorer", "Start",
    "available_backends", "backend_names", "best_start", "compiled_objective", "forward_scorer",
    "get_backend", "onednn_available", "roles", "runtime_of",
]
