"""Backends are objects in one registry: the built-ins in order, and a third party's added by one
module and one ``pulse_cli.backends`` entry point, which searches then use as they use the
built-ins (nothing in ``search.py`` names a backend)."""

from __future__ import annotations

import numpy as np
import pytest

from pulse_cli import backends
from pulse_cli.models.stylegan import FFHQ
from pulse_cli.options import SearchOptions
from pulse_cli.search import search

# A real backend: eager gradient steps, forward-only scoring on a copy of the objective in
# eval mode, and the outputs scored again by it (as the onnx backend does in onnxruntime).
RESCORING_BACKEND = '''
from dataclasses import dataclass

from pulse_cli.backends.scoring import PaddleScorer


class EvalScorer(PaddleScorer):
    runtime = "Paddle dygraph (eval copy)"


@dataclass(frozen=True)
class RescoringBackend:
    name: str = "rescoring"
    description: str = "eager steps, outputs scored again"
    steps_own: bool = True
    rescores: bool = True

    def objective(self, objective):
        return objective

    def scorer(self, objective):
        return EvalScorer(objective)

    def roles(self, objective, scorer):
        return {"gradient steps": "Paddle dygraph", "forward-only scoring": scorer.runtime}


BACKEND = RescoringBackend()
'''


def test_builtin_backends_come_in_order_and_unknown_names_list_them():
    assert backends.backend_names()[:3] == ("dygraph", "static", "onnx")
    with pytest.raises(backends.BackendError, match="unknown backend 'tpu'; known: dygraph, static, onnx"):
        backends.get_backend("tpu")


def test_a_backend_added_by_one_module_and_one_entry_point_runs_searches(mount_distribution):
    mount_distribution(
        "pulse-rescoring", "[pulse_cli.backends]\nrescoring = pulse_rescoring:BACKEND\n",
        "pulse_rescoring", RESCORING_BACKEND,
    )
    assert backends.backend_names()[-1] == "rescoring"
    generator = FFHQ.build(**FFHQ.small_config)
    refs = np.random.default_rng(4).random((2, 3, 8, 8), dtype=np.float32)
    result = search(generator, refs, SearchOptions(steps=2, seed=1, backend="rescoring"))
    assert result.roles == {
        "gradient steps": "Paddle dygraph",
        "forward-only scoring": "Paddle dygraph (eval copy)",
    }
    assert result.rescore is not None and result.rescore.runtime == "Paddle dygraph (eval copy)"
    np.testing.assert_allclose(result.rescore.scores["TOTAL"], result.best_total, rtol=1e-5)
    eager = search(generator, refs, SearchOptions(steps=2, seed=1))
    np.testing.assert_allclose(result.log["TOTAL"], eager.log["TOTAL"], rtol=1e-6)


def test_a_third_party_backend_cannot_shadow_a_builtin(mount_distribution):
    mount_distribution(
        "pulse-shadow", "[pulse_cli.backends]\ndygraph = pulse_shadow:BACKEND\n",
        "pulse_shadow", RESCORING_BACKEND.replace('"rescoring"', '"dygraph"'),
    )
    assert not backends.get_backend("dygraph").rescores
