"""PULSE's learning-rate schedules: multipliers of the base rate by step, as in PULSE.py."""

from __future__ import annotations

from collections.abc import Callable

import paddle


def _fixed(steps: int) -> Callable[[int], float]:
    """The base rate throughout."""
    return lambda x: 1.0


def _linear1cycle(steps: int) -> Callable[[int], float]:
    """Up from 0.1 to 1 at mid-run, back down to 0.1."""
    return lambda x: (9 * (1 - abs(x / steps - 1 / 2) * 2) + 1) / 10


def _linear1cycledrop(steps: int) -> Callable[[int], float]:
    """The one-cycle over the first 90 % of the steps, then a linear drop from 0.1 toward 0.001."""

    def factor(x: int) -> float:
        if x < 0.9 * steps:
            return (9 * (1 - abs(x / (0.9 * steps) - 1 / 2) * 2) + 1) / 10
        return 1 / 10 + (x - 0.9 * steps) / (0.1 * steps) * (1 / 1000 - 1 / 10)

    return factor


SCHEDULES: dict[str, Callable[[int], Callable[[int], float]]] = {
    "fixed": _fixed,
    "linear1cycle": _linear1cycle,
    "linear1cycledrop": _linear1cycledrop,
}


def lr_lambda(name: str, steps: int) -> Callable[[int], float]:
    """The multiplier of the base learning rate at step 0, 1, … of a ``steps``-step search."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {name!r}; known: {', '.join(SCHEDULES)}")
    if steps < 1:
        raise ValueError(f"a schedule needs at least one step, got {steps}")
    return SCHEDULES[name](steps)


def make_scheduler(name: str, steps: int, learning_rate: float) -> paddle.optimizer.lr.LambdaDecay:
    """A Paddle scheduler giving ``learning_rate * f(j)`` at step j (call ``step()`` after each update)."""
    return paddle.optimizer.lr.LambdaDecay(learning_rate=learning_rate, lr_lambda=lr_lambda(name, steps))
