"""PULSE's loss terms, per image, and the ``100*L2+0.05*GEOCROSS`` grammar that weighs them.

A term is a plain function ``term(inputs: LossInputs) -> Tensor [B]``: one value per image, so a
search can keep the best image of each. PULSE's scalar loss is the sum of these over the batch;
the weighted sum itself is ``graphs.objective.Objective.forward``.
Every term is made of operators that run under ``paddle.jit.to_static`` and export to ONNX.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import paddle


@dataclass
class LossInputs:
    """What a loss term may look at.

    ``latent`` is the mapped latent fed to the synthesis [B, L, D] (PULSE's ``latent_in``),
    ``gen_im`` the generated image [B, 3, R, R] in [0, 1], ``gen_im_lr`` its bicubic downscale,
    ``ref_im`` the low-resolution input [B, 3, r, r], ``eps`` the floor of the image terms.
    """

    latent: paddle.Tensor
    gen_im: paddle.Tensor
    gen_im_lr: paddle.Tensor
    ref_im: paddle.Tensor
    eps: float


LossTerm = Callable[[LossInputs], paddle.Tensor]


def l2(inputs: LossInputs) -> paddle.Tensor:
    """Mean squared difference of the downscaled image and the input, floored at ``eps``."""
    return (inputs.gen_im_lr - inputs.ref_im).pow(2).mean(axis=[1, 2, 3]).clip(min=inputs.eps)


def l1(inputs: LossInputs) -> paddle.Tensor:
    """Ten times the mean absolute difference of the downscaled image and the input, floored at ``eps``."""
    return 10 * (inputs.gen_im_lr - inputs.ref_im).abs().mean(axis=[1, 2, 3]).clip(min=inputs.eps)


def geocross(inputs: LossInputs) -> paddle.Tensor:
    """Mean squared geodesic distance between the latent's layer vectors (PULSE's GEOCROSS).

    PULSE's constants are kept for any layer count L: ``mean over L×L of (2·atan2(A, B))² · 512 / 8``.
    A latent with one layer (tiled) has no pairs and scores zero.
    """
    latent = inputs.latent
    num_layers = latent.shape[1]
    if num_layers == 1:
        return latent.sum(axis=[1, 2]) * 0.0
    x = latent.unsqueeze(1)
    y = latent.unsqueeze(2)
    a = ((x - y).pow(2).sum(axis=-1) + 1e-9).sqrt()
    b = ((x + y).pow(2).sum(axis=-1) + 1e-9).sqrt()
    distance = 2 * paddle.atan2(a, b)
    return (distance.pow(2) * 512).mean(axis=[1, 2]) / 8.0


class LossStringError(ValueError):
    """A loss string that does not follow ``weight*TERM+weight*TERM`` or names an unknown term."""


_NUMBER = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_WEIGHTED_TERM = re.compile(rf"\s*({_NUMBER})\s*\*\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
_SEPARATOR = re.compile(r"\+")


def parse_loss_str(loss_str: str, known: Iterable[str]) -> list[tuple[float, str]]:
    """``"100*L2+0.05*GEOCROSS"`` → ``[(100.0, "L2"), (0.05, "GEOCROSS")]``, checked against ``known``.

    A term named more than once is one term whose weight is the sum of its weights, in the place
    of its first mention (``"100*L2+1*L2"`` → ``[(101.0, "L2")]``): every term is computed, logged
    and reported once.
    """
    known = sorted(known)

    def fail(cause: str) -> LossStringError:
        return LossStringError(
            f"bad loss string {loss_str!r}: {cause}; "
            f"expected weight*TERM joined by '+', known terms: {', '.join(known)}"
        )

    parsed: dict[str, float] = {}
    position = 0
    while True:
        match = _WEIGHTED_TERM.match(loss_str, position)
        if match is None:
            raise fail(f"cannot read a weight*TERM at character {position + 1}")
        weight, name = float(match.group(1)), match.group(2)
        if name not in known:
            raise fail(f"unknown term {name!r}")
        parsed[name] = parsed.get(name, 0.0) + weight
        position = match.end()
        if position == len(loss_str):
            return [(total, term) for term, total in parsed.items()]
        if not _SEPARATOR.match(loss_str, position):
            raise fail(f"expected '+' at character {position + 1}")
        position += 1

