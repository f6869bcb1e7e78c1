"""PULSE's spherical optimizer, and the optimizers it wraps with PyTorch's update rules.

The factories ``sgd``, ``adam``, ``sgdm`` and ``adamax`` are the ``pulse_cli.optimizers`` entry
points: ``factory(parameters, learning_rate) -> paddle.optimizer.Optimizer`` with torch's defaults,
``learning_rate`` a float or a Paddle LR scheduler. Paddle's SGD and Momentum already follow torch
(momentum: ``v = μv + g; p -= lr·v``). Paddle's Adam keeps ``beta2**t`` in float32, whose
``1 - beta2**t`` loses five digits, and Paddle's Adamax adds eps to the decayed norm instead of to
``|g|``; both are written out here as torch writes them.
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


def vector_radius(param: paddle.Tensor) -> paddle.Tensor:
    """``sqrt(sum of squares over dims ≥ 2 + 1e-9)``, kept as [d0, d1, 1, …]; summed in float64."""
    squares = param.astype("float64").pow(2).sum(axis=list(range(2, param.ndim)), keepdim=True)
    return (squares + 1e-9).sqrt().astype(param.dtype)


class SphericalOptimizer:
    """PULSE's ``SphericalOptimizer``: an optimizer whose parameters stay on their starting spheres.

    ``optimizer`` updates ``parameters`` (build it with one of the factories). Every vector spanned
    by the dims ≥ 2 of a parameter (per (batch, layer) of a latent [B, L, D], per (batch, channel)
    of a noise map [B, 1, r, r]) keeps the radius it had at construction: after each inner step
    it is scaled back to it.
    """

    def __init__(self, optimizer: Optimizer, parameters: Sequence[paddle.Tensor]) -> None:
        self.optimizer = optimizer
        self.parameters = list(parameters)
        with paddle.no_grad():
            self.radii = [vector_radius(param) for param in self.parameters]

    @paddle.no_grad()
    def step(self) -> None:
        """The inner optimizer's step, then every parameter back onto its sphere."""
        self.optimizer.step()
        for param, radius in zip(self.parameters, self.radii, strict=True):
            paddle.assign(param / vector_radius(param) * radius, output=param)

    def clear_grad(self) -> None:
        """Zero the parameters' gradients."""
        self.optimizer.clear_grad()

    def get_lr(self) -> float:
        """The inner optimizer's current learning rate."""
        return self.optimizer.get_lr()

    def set_lr(self, value: float) -> None:
        """Set the learning rate (only when it is not driven by a scheduler)."""
        self.optimizer.set_lr(value)
