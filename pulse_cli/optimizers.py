"""The optimizers PULSE's search wraps, with PyTorch's update rules: the built-in
``pulse_cli.optimizers`` entry points.

Each factory is ``factory(parameters, learning_rate) -> paddle.optimizer.Optimizer`` with torch's
defaults, ``learning_rate`` a float or a Paddle LR scheduler (the ``OptimizerFactory`` contract
of ``pulse_cli.plugins.contracts``). Paddle's SGD and Momentum already follow torch (momentum:
``v = μv + g; p -= lr·v``). Paddle's Adam keeps ``beta2**t`` in float32, whose ``1 - beta2**t``
loses five digits, and Paddle's Adamax adds eps to the decayed norm instead of to ``|g|``; both
are written out here as torch writes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import paddle
from paddle.optimizer import Optimizer
from paddle.optimizer.lr import LRScheduler

LearningRate = float | LRScheduler


class _TorchMomentOptimizer(Optimizer):
    """Adam-like updates as ``torch.optim`` computes them, in float32 with double-precision scalars.

    ``m ← lerp(m, g, 1 - β1)``; ``p ← p - lr / (1 - β1^t) · m / denominator``, the denominator
    being the subclass's. Each parameter counts its own steps, as in torch.
    """

    def __init__(
        self,
        parameters: Sequence[paddle.Tensor],
        learning_rate: LearningRate,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None:
        super().__init__(learning_rate=learning_rate, parameters=list(parameters))
        self._beta1 = beta1
        self._beta2 = beta2
        self._epsilon = epsilon
        self._state: dict[int, dict] = {}

    def _denominator(self, state: dict, grad: paddle.Tensor, step: int) -> paddle.Tensor:
        """Update the second statistic in ``state`` with ``grad`` and return the step's divisor."""
        raise NotImplementedError

    @paddle.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        lr = self.get_lr()
        for param in self._parameter_list:
            grad = param.grad
            if param.stop_gradient or grad is None:
                continue
            state = self._state.setdefault(
                id(param), {"step": 0, "m": paddle.zeros_like(param), "second": paddle.zeros_like(param)}
            )
            state["step"] += 1
            state["m"] = state["m"] + (1 - self._beta1) * (grad - state["m"])
            divisor = self._denominator(state, grad, state["step"])
            step_size = lr / (1 - self._beta1 ** state["step"])
            paddle.assign(param - step_size * (state["m"] / divisor), output=param)


class TorchAdam(_TorchMomentOptimizer):
    """``torch.optim.Adam``: ``v ← β2·v + (1-β2)·g²``, divisor ``sqrt(v) / sqrt(1 - β2^t) + eps``."""

    def _denominator(self, state: dict, grad: paddle.Tensor, step: int) -> paddle.Tensor:
        state["second"] = state["second"] * self._beta2 + (1 - self._beta2) * grad * grad
        return state["second"].sqrt() / (1 - self._beta2**step) ** 0.5 + self._epsilon


class TorchAdamax(_TorchMomentOptimizer):
    """``torch.optim.Adamax``: divisor ``u ← max(β2·u, |g| + eps)``."""

    def _denominator(self, state: dict, grad: paddle.Tensor, step: int) -> paddle.Tensor:
        state["second"] = paddle.maximum(state["second"] * self._beta2, grad.abs() + self._epsilon)
        return state["second"]


def sgd(parameters: list, learning_rate: LearningRate) -> Optimizer:
    """Plain SGD (``torch.optim.SGD``)."""
    return paddle.optimizer.SGD(learning_rate=learning_rate, parameters=parameters)


def sgdm(parameters: list, learning_rate: LearningRate) -> Optimizer:
    """SGD with momentum 0.9 (``torch.optim.SGD(momentum=0.9)``: ``v = 0.9·v + g; p -= lr·v``)."""
    return paddle.optimizer.Momentum(learning_rate=learning_rate, momentum=0.9, parameters=parameters)


def adam(parameters: list, learning_rate: LearningRate) -> Optimizer:
    """Adam with torch's defaults (betas 0.9/0.999, eps 1e-8) and torch's arithmetic."""
    return TorchAdam(parameters, learning_rate)


def adamax(parameters: list, learning_rate: LearningRate) -> Optimizer:
    """Adamax with torch's defaults (betas 0.9/0.999, eps 1e-8) and torch's arithmetic."""
    return TorchAdamax(parameters, learning_rate)
