"""How a search's forward pass runs: eager Paddle, compiled Paddle, or onnxruntime for scoring.

- ``dygraph``: the ``Objective`` as it is, in eager Paddle: the reference behaviour.
- ``static``: the synthesis network, where nearly all the time goes, is compiled with
  ``paddle.jit.to_static``, its forward lowered with oneDNN kernels on CPU (when Paddle has
  them; see ``CompiledSynthesis`` for the backward); gradient steps and forward-only scoring run
  through it. The latent mapping, bicubic downscale and loss terms around it stay eager: under
  oneDNN, Paddle 3.3's backward of reflect padding is zero and GEOCROSS's is wrong, and eager
  Paddle never uses oneDNN kernels.
- ``onnx``: forward-only scoring (``--starts`` and ``score``) runs an exported scorer in
  onnxruntime (CUDA provider when present); the gradient steps run in eager Paddle.

Exported scorers are checked against the eager objective before they are used.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import paddle
from paddle import nn

from pulse_cli.graphs.objective import Objective
from pulse_cli.models.generator import GaussianFit, Generator

ONEDNN_FLAG = "FLAGS_use_mkldnn"


class Start(Protocol):
    """A candidate starting point: latent [B, 1 or L, D] and one noise map per noise layer."""

    latent: np.ndarray
    noise: list[np.ndarray]


class Scorer(Protocol):
    """Forward-only scoring of latents: totals [N] and terms [T, N] for N latents."""

    runtime: str

    def score(
        self, latent: np.ndarray, noise: Sequence[np.ndarray], ref_im: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


def onednn_available() -> bool:
    """Whether this Paddle runs on CPU and has oneDNN kernels."""
    on_cpu = not paddle.device.get_device().startswith("gpu")
    return on_cpu and bool(paddle.base.core.is_compiled_with_mkldnn())


def _onednn_flag() -> bool:
    return bool(paddle.get_flags([ONEDNN_FLAG])[ONEDNN_FLAG])


def _set_onednn(enabled: bool) -> bool:
    """Set Paddle's oneDNN flag; its value before."""
    previous = _onednn_flag()
    paddle.set_flags({ONEDNN_FLAG: enabled})
    return previous


class _AssignedSynthesis(nn.Layer):
    """The synthesis network as one program; its output is copied out of oneDNN's memory
    (``assign``), without which Paddle 3.3 crashes handing a raw oneDNN result back to eager code."""

    def __init__(self, synthesis: nn.Layer) -> None:
        super().__init__()
        self.synthesis = synthesis

    def forward(self, latent_in: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        return paddle.assign(self.synthesis(latent_in, noise))


class CompiledSynthesis(nn.Layer):
    """A synthesis network run as a ``paddle.jit.to_static`` program, lowered with oneDNN kernels.

    Paddle lowers a program's kernels the first time it runs, forward and backward alike, with
    the oneDNN flag as it is then. The flag is set for exactly those runs: ``use_onednn`` around
    the forward call, ``onednn_backward`` for the backward (from a gradient hook on the output
    until one on the first input that takes a gradient); the rest of the process never sees it.

    oneDNN's convolutions are 2-3 times faster than Paddle's own, but some of its backward
    kernels are slow (a broadcast multiply or add) or wrong (a broadcast subtraction), so the
    backward uses oneDNN only for a network that says it is written for it: one whose
    ``onednn_backward`` attribute is true, as StyleGAN's (1024 px, batch 1: 6.6 s a step against
    9.8 s in dygraph). The ``onednn_backward`` argument overrides that. A
    network that oneDNN refuses to train (``conv2d_transpose`` is inference-only there) is
    compiled without it.
    """

    def __init__(
        self, synthesis: nn.Layer, use_onednn: bool | None = None, onednn_backward: bool | None = None
    ) -> None:
        super().__init__()
        self.use_onednn = onednn_available() if use_onednn is None else use_onednn
        if onednn_backward is None:
            onednn_backward = bool(getattr(synthesis, "onednn_backward", False))
        self.onednn_backward = onednn_backward
        self.program = paddle.jit.to_static(_AssignedSynthesis(synthesis), full_graph=True)
        self.onednn_refused: str | None = None

    @property
    def runtime(self) -> str:
        """What runs the network, for reports."""
        if self.onednn_refused:
            return f"Paddle to_static (oneDNN refused: {self.onednn_refused})"
        if not self.use_onednn:
            return "Paddle to_static"
        return "Paddle to_static with oneDNN" + ("" if self.onednn_backward else " (forward)")

    def _run(self, latent_in: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        # to_static runs a layer in eval mode as an inference program, without a backward: the
        # wrapper alone stays in train mode (the synthesis inside keeps the mode it was given).
        self.program.training = True
        previous = _set_onednn(self.use_onednn)
        try:
            return self.program(latent_in, noise)
        finally:
            _set_onednn(previous)

    def forward(self, latent_in: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        try:
            image = self._run(latent_in, noise)
        except (ValueError, RuntimeError, NotImplementedError) as exc:
            if not self.use_onednn:
                raise
            lines = str(exc).strip().splitlines()
            cause = next((line.strip() for line in lines if "Error" in line), type(exc).__name__)
            self.onednn_refused = cause.split(": ", 1)[-1].split(". ")[0]
            self.use_onednn = False
            self.program = paddle.jit.to_static(_AssignedSynthesis(self.program.synthesis), full_graph=True)
            image = self._run(latent_in, noise)
        first_input = next((x for x in [latent_in, *noise] if not x.stop_gradient), None)
        if first_input is not None:
            backward = self.use_onednn and self.onednn_backward
            previous = _onednn_flag()
            image.register_hook(lambda grad: (_set_onednn(backward), grad)[1])
            first_input.register_hook(lambda grad: (_set_onednn(previous), grad)[1])
        return image


def runtime_of(objective: Objective) -> str:
    """What runs ``objective``'s synthesis: eager Paddle, or the compiled program's description."""
    synthesis = objective.generator.synthesis
    return synthesis.runtime if isinstance(synthesis, CompiledSynthesis) else "Paddle dygraph"


def compiled_objective(
    objective: Objective, use_onednn: bool | None = None, onednn_backward: bool | None = None
) -> Objective:
    """The same objective with its generator's synthesis compiled (``CompiledSynthesis``); the
    latent mapping, downscale and loss terms around it run eagerly (see the module notes)."""
    generator = objective.generator
    fit = None if generator.fit_mean is None else GaussianFit(generator.fit_mean, generator.fit_std)
    compiled = Generator(
        CompiledSynthesis(generator.synthesis, use_onednn, onednn_backward),
        name=generator.name,
        resolution=generator.resolution,
        num_layers=generator.num_layers,
        latent_dim=generator.latent_dim,
        noise_resolutions=generator.noise_resolutions,
        gaussian_fit=fit,
        latent_radius=generator.latent_radius,
        source=generator.source,
    )
    weighted = list(zip(objective.weights, objective.term_names))
    return Objective(
        compiled,
        objective.downsample.factor,
        weighted,
        dict(zip(objective.term_names, objective.term_fns)),
        objective.eps,
    )


def compile_objective(objective: Objective, backend: str) -> Objective:
    """The objective the gradient steps of ``backend`` run: compiled for ``static``, else eager."""
    return compiled_objective(objective) if backend == "static" else objective


class PaddleScorer:
    """Forward-only scoring with a Paddle objective (eager or compiled), without gradients."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective

    @property
    def runtime(self) -> str:
        return runtime_of(self.objective)

    def score(
        self, latent: np.ndarray, noise: Sequence[np.ndarray], ref_im: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        with paddle.no_grad():
            _, _, total, terms = self.objective(
                paddle.to_tensor(latent), [paddle.to_tensor(n) for n in noise], paddle.to_tensor(ref_im)
            )
        return total.numpy(), terms.numpy()


class OnnxScorer:
    """Forward-only scoring with the objective exported to ONNX, in onnxruntime."""

    def __init__(self, objective: Objective) -> None:
        from pulse_cli.export import onnx as onnx_export
        from pulse_cli.export import static
        from pulse_cli.export.graphs import scorer_graph
        from pulse_cli.export.verify import check_parity

        graph = scorer_graph(objective)
        with tempfile.TemporaryDirectory(prefix="pulse-scorer-") as scratch:
            prefix = Path(scratch) / graph.name
            static.save(graph, prefix)
            path = onnx_export.save_model(onnx_export.paddle_to_onnx(prefix, graph.outputs), prefix)
            self.graph = onnx_export.OnnxGraph(path)  # the session holds the model: the file may go
        self.runtime = f"onnxruntime ({self.graph.provider})"
        check_parity(
            graph, {self.runtime: self.graph}, batch=1
        )  # exported graphs are never trusted unchecked
        self.num_layers = objective.generator.num_layers

    def score(
        self, latent: np.ndarray, noise: Sequence[np.ndarray], ref_im: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        latent = np.asarray(latent, np.float32)
        if latent.shape[1] != self.num_layers:  # a tiled latent: the graph takes every layer
            latent = np.repeat(latent, self.num_layers, axis=1)
        feed = {"latent": latent, "ref_im": np.asarray(ref_im, np.float32)}
        feed.update({f"noise_{i}": np.asarray(n, np.float32) for i, n in enumerate(noise)})
        _, _, total, terms = self.graph.run(feed)
        return total, terms


@dataclass
class _CachedScorer:
    generator: nn.Layer
    scorer: OnnxScorer


_ONNX_SCORERS: dict[tuple[object, ...], _CachedScorer] = {}
MAX_CACHED_SCORERS = 2


def _onnx_scorer(objective: Objective) -> OnnxScorer:
    """The ONNX scorer of ``objective``, kept per (generator, factor, loss, eps) for later searches."""
    key = (
        id(objective.generator), objective.downsample.factor, tuple(objective.term_names),
        tuple(objective.weights), objective.eps,
    )  # fmt: skip
    cached = _ONNX_SCORERS.get(key)
    if cached is None or cached.generator is not objective.generator:
        while len(_ONNX_SCORERS) >= MAX_CACHED_SCORERS:
            _ONNX_SCORERS.pop(next(iter(_ONNX_SCORERS)))
        cached = _ONNX_SCORERS[key] = _CachedScorer(objective.generator, OnnxScorer(objective))
    return cached.scorer


def forward_scorer(objective: Objective, backend: str) -> Scorer:
    """What scores starting points (and outputs) without gradients for ``backend``: the search's
    own objective for ``dygraph`` and ``static`` (compiled), its exported scorer in
    onnxruntime for ``onnx``."""
    if backend == "onnx":
        return _onnx_scorer(objective)
    return PaddleScorer(objective)


def best_start(
    scorer: Scorer,
    candidates: Sequence[Start],
    ref_im: np.ndarray,
    noise_of: Callable[[Start], Sequence[paddle.Tensor]],
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Score every candidate (one batch each) and keep, per image, the lowest-loss one.

    ``noise_of`` gives the noise the search would feed for a candidate (zeros where the options
    hold a layer at zero). Returns the chosen latent, its noise maps and the totals [K, B].
    """
    totals = []
    for candidate in candidates:
        noise = [n.numpy() if isinstance(n, paddle.Tensor) else np.asarray(n) for n in noise_of(candidate)]
        total, _ = scorer.score(candidate.latent, noise, ref_im)
        totals.append(np.where(np.isfinite(total), total, np.inf))
    table = np.stack(totals)
    best = table.argmin(axis=0)
    images = np.arange(table.shape[1])
    latent = np.stack([candidates[k].latent[i] for i, k in zip(images, best)])
    noise = [
        np.stack([candidates[k].noise[j][i] for i, k in zip(images, best)])
        for j in range(len(candidates[0].noise))
    ]
    return latent, noise, table


def roles(objective: Objective, scorer: Scorer) -> dict[str, str]:
    """Which runtime does what in a search: its gradient steps, its forward-only scoring."""
    return {"gradient steps": runtime_of(objective), "forward-only scoring": scorer.runtime}
