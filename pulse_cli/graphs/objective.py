"""The forward pass a PULSE step differentiates: latent → image → downscale → loss terms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import paddle
from paddle import nn

from pulse_cli.graphs.bicubic import BicubicDownsample
from pulse_cli.graphs.generator import Generator
from pulse_cli.graphs.losses import LossInputs, LossTerm, parse_loss_str


class Objective(nn.Layer):
    """Scores searched latents against low-resolution references.

    ``forward(latent [B, G, D], noise, ref_im [B,3,r,r])`` returns the image [B,3,R,R] in
    [0, 1], its bicubic downscale, the weighted total per image [B] and the stacked terms [T, B]
    in the order of ``term_names``. A latent of G < L rows (tiled or shared) is spread over the
    generator's L rows first (``Generator.expand_latent``); the loss terms (GEOCROSS too, as
    PULSE computes it) see the mapped latent of all L rows.
    This is the one place the terms are weighed and summed; each term appears once.
    """

    def __init__(
        self,
        generator: Generator,
        factor: int,
        weighted_terms: Sequence[tuple[float, str]],
        terms: Mapping[str, LossTerm],
        eps: float,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.downsample = BicubicDownsample(factor)
        self.weights = [float(weight) for weight, _ in weighted_terms]
        self.term_names = [name for _, name in weighted_terms]
        if len(set(self.term_names)) != len(self.term_names):  # parse_loss_str merges repeats
            raise ValueError(f"each loss term once, with its summed weight: got {self.term_names}")
        self.term_fns = [terms[name] for name in self.term_names]
        self.eps = float(eps)

    @classmethod
    def from_loss_str(
        cls, generator: Generator, factor: int, loss_str: str, eps: float, terms: Mapping[str, LossTerm]
    ) -> Objective:
        """The eager objective of a loss string (``100*L2+0.05*GEOCROSS``) over the loss ``terms``
        (the loaded ``pulse_cli.losses`` plugins); ``LossStringError`` when it names no known term."""
        return cls(generator, factor, parse_loss_str(loss_str, terms), terms, eps)

    def forward(
        self, latent: paddle.Tensor, noise: list[paddle.Tensor], ref_im: paddle.Tensor
    ) -> tuple[paddle.Tensor, paddle.Tensor, paddle.Tensor, paddle.Tensor]:
        latent_in = self.generator.map_latent(self.generator.expand_latent(latent))
        gen_im = self.generator(latent_in, noise)
        gen_im_lr = self.downsample(gen_im)
        inputs = LossInputs(latent=latent_in, gen_im=gen_im, gen_im_lr=gen_im_lr, ref_im=ref_im, eps=self.eps)
        values = [fn(inputs) for fn in self.term_fns]
        total = values[0] * self.weights[0]
        for weight, value in zip(self.weights[1:], values[1:]):
            total = total + value * weight
        return gen_im, gen_im_lr, total, paddle.stack(values)
