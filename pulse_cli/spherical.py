"""PULSE's spherical optimizer: any optimizer whose parameters are kept on their starting spheres.

The optimizers it wraps are the ``pulse_cli.optimizers`` plugins (built-in ones in
``pulse_cli.optimizers``).
"""

from __future__ import annotations

from collections.abc import Sequence

import paddle
from paddle.optimizer import Optimizer


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
