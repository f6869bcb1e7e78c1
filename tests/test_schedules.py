"""PULSE's learning-rate schedules and their Paddle scheduler."""

from __future__ import annotations

import json

import pytest

from pulse_cli.options import LR_SCHEDULES
from pulse_cli.schedules import SCHEDULES, lr_lambda, make_scheduler


def load_reference(reference_dir) -> dict:
    return json.loads((reference_dir / "schedules.json").read_text())


@pytest.mark.parametrize("name", LR_SCHEDULES)
def test_multipliers_match_pulse_schedule_dict(reference_dir, name):
    reference = load_reference(reference_dir)
    factor = lr_lambda(name, reference["steps"])
    expected = reference["factors"][name]
    assert len(expected) == reference["steps"]
    for step, value in enumerate(expected):
        assert factor(step) == pytest.approx(value, rel=0, abs=1e-12), f"{name} step {step}"


@pytest.mark.parametrize("name", LR_SCHEDULES)
def test_scheduler_gives_base_rate_times_multiplier_at_each_step(name):
    steps, base = 20, 0.4
    factor = lr_lambda(name, steps)
    scheduler = make_scheduler(name, steps, base)
    for step in range(steps):
        assert scheduler.get_lr() == pytest.approx(base * factor(step), rel=0, abs=1e-15)
        scheduler.step()


def test_every_option_schedule_is_known():
    assert set(SCHEDULES) == set(LR_SCHEDULES)


def test_unknown_schedule_raises_listing_the_known_ones():
    with pytest.raises(
        ValueError, match="unknown lr schedule 'cosine'; known: fixed, linear1cycle, linear1cycledrop"
    ):
        lr_lambda("cosine", 100)
    with pytest.raises(ValueError, match="cosine"):
        make_scheduler("cosine", 100, 0.4)
