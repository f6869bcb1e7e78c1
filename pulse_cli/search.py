"""PULSE's latent search: projected gradient descent on spheres for an image that downscales right."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import paddle

from pulse_cli import plugins
from pulse_cli.backends import DEFAULT, Backend, Scorer, best_start, get_backend
from pulse_cli.graphs.generator import Generator
from pulse_cli.graphs.objective import Objective
from pulse_cli.options import SearchOptions
from pulse_cli.schedules import make_scheduler
from pulse_cli.spherical import SphericalOptimizer


class SearchError(ValueError):
    """A search that cannot start or cannot go on (bad reference shape, non-finite loss)."""


@dataclass
class StepReport:
    """What one step saw, for progress bars and intermediate images."""

    step: int
    steps: int
    total: np.ndarray  # [B]
    l2: np.ndarray | None  # [B], when the loss has an L2 term
    gen_im: np.ndarray | None = None  # [B,3,R,R] in [0,1], only with save_intermediate
    gen_im_lr: np.ndarray | None = None


@dataclass
class Rescore:
    """Each image's best latent and noise scored again, forward-only, by another runtime.

    ``scores`` maps TOTAL and each loss term to an array [B], as ``SearchResult.log`` names them.
    """

    runtime: str
    scores: dict[str, np.ndarray]


@dataclass
class SearchResult:
    """The outcome of one search over a batch of references.

    ``log`` maps TOTAL and each loss term to an array [steps_run, B], recorded before each step.
    ``best_image`` is each image's lowest-TOTAL image, made from ``best_latent`` [B, G, D] (G
    rows as ``layout`` lays them out: ``Generator.row_index``)
    and ``best_noise`` (every noise map as it was fed at that step, one [B,1,r,r] per noise
    layer); ``best_total`` and ``best_l2`` are its scores; ``eps_met`` says whether its L2 is
    within eps. ``errors`` holds, per image, why its search was stopped (non-finite loss), or None.
    ``roles`` says which runtime did the gradient steps and which the forward-only scoring
    (``Backend.roles``); ``rescore`` is the best latents scored again by the backend's scorer,
    for a backend that ``rescores`` (``onnx``: in onnxruntime). ``search_l2``, where a strategy
    corrected the images after the search (``pulse_cli.consistency``), is each image's L2 as the
    generator made it; ``best_image``, ``best_image_lr`` and ``best_l2`` are then the corrected
    image's, which ``best_latent`` and ``best_noise`` no longer make exactly.
    """

    log: dict[str, np.ndarray]
    best_image: np.ndarray
    best_image_lr: np.ndarray
    best_step: np.ndarray
    best_l2: np.ndarray
    eps_met: np.ndarray
    final_latent: np.ndarray
    steps_run: int
    seconds: float
    errors: list[str | None] = field(default_factory=list)
    best_latent: np.ndarray | None = None
    best_noise: list[np.ndarray] = field(default_factory=list)
    best_total: np.ndarray | None = None
    roles: dict[str, str] = field(default_factory=dict)
    rescore: Rescore | None = None
    layout: str = "full"
    search_l2: np.ndarray | None = None


@dataclass
class StartingPoint:
    """The latent and noise a search starts from, as numpy arrays."""

    latent: np.ndarray  # [B, G, D], G rows as the layout lays them out
    noise: list[np.ndarray]  # one [B,1,r,r] per noise layer


def _reference_factor(generator: Generator, ref_im: np.ndarray) -> int:
    if ref_im.ndim != 4 or ref_im.shape[1] != 3 or ref_im.shape[2] != ref_im.shape[3]:
        raise SearchError(f"reference images must be [B,3,r,r], got shape {list(ref_im.shape)}")
    side = ref_im.shape[2]
    factor = generator.resolution // side
    if side * factor != generator.resolution or factor & (factor - 1):
        raise SearchError(
            f"a {side}x{side} reference does not divide {generator.name}'s {generator.resolution} px "
            "output by a power of two"
        )
    return factor


def draw_start(
    generator: Generator, batch: int, options: SearchOptions, rng: np.random.Generator
) -> StartingPoint:
    """A random starting point as PULSE draws it: Gaussian latent (as many rows as the options'
    latent layout has for this generator), then Gaussian noise per layer; a generator with default
    ("baked") noise maps starts from those instead of Gaussian noise."""
    layers = generator.latent_rows(options.layout(generator.latent_layout.default))
    latent = rng.standard_normal((batch, layers, generator.latent_dim), dtype=np.float32)
    if generator.latent_radius is not None:
        norms = np.sqrt((latent**2).sum(-1, keepdims=True))
        latent = latent / norms * np.float32(generator.latent_radius)
    if generator.default_noise is not None:
        noise = [np.repeat(baked, batch, axis=0) for baked in generator.default_noise]
    else:
        noise = [rng.standard_normal((batch, 1, r, r), dtype=np.float32) for r in generator.noise_resolutions]
    return StartingPoint(latent, noise)


def draw_rows(
    generator: Generator, options: SearchOptions, rngs: Sequence[np.random.Generator]
) -> StartingPoint:
    """One starting point per image, each drawn from that image's own random generator, so an
    image starts from the same point whatever batch it is searched in."""
    rows = [draw_start(generator, 1, options, rng) for rng in rngs]
    return StartingPoint(
        np.concatenate([row.latent for row in rows]),
        [np.concatenate(maps) for maps in zip(*(row.noise for row in rows))],
    )


def _noise_variables(
    generator: Generator, start: StartingPoint, options: SearchOptions
) -> tuple[list[paddle.Tensor], list[paddle.Tensor]]:
    """All noise inputs, and the subset that is optimized, per PULSE's noise options."""
    bad = options.bad_layers(len(generator.noise_resolutions))
    noise, trainable = [], []
    for i, values in enumerate(start.noise):
        if options.noise_type == "zero" or i in bad:
            noise.append(paddle.zeros(values.shape, dtype="float32"))
        elif options.noise_type == "trainable" and i < options.num_trainable_noise_layers:
            tensor = paddle.to_tensor(values, stop_gradient=False)
            noise.append(tensor)
            trainable.append(tensor)
        else:
            noise.append(paddle.to_tensor(values))
    return noise, trainable


def chosen_backend(generator: Generator, options: SearchOptions) -> Backend:
    """The backend a search of ``generator`` runs on: the one the options name, else the
    generator's default, else the registry's."""
    return get_backend(options.backend or generator.default_backend or DEFAULT)


def build_objective(generator: Generator, factor: int, options: SearchOptions) -> Objective:
    """The scoring layer for these options, with loss terms taken from the loss plugins, as the
    chosen backend runs its gradient steps (``Backend.objective``: compiled for ``static``)."""
    terms = plugins.available("losses")
    objective = Objective.from_loss_str(generator, factor, options.loss_str, options.eps, terms)
    return chosen_backend(generator, options).objective(objective)


def best_of_starts(
    generator: Generator,
    objective: Objective,
    first: StartingPoint,
    ref_im: np.ndarray,
    options: SearchOptions,
    draw: Callable[[], StartingPoint],
) -> StartingPoint:
    """``first`` and ``options.starts - 1`` more random starting points (``draw``), scored
    forward-only by the backend's scorer (onnxruntime for ``onnx``); each image starts from its
    lowest-loss one."""
    more = [draw() for _ in range(options.starts - 1)]
    candidates = [first, *more]
    scorer = chosen_backend(generator, options).scorer(objective)
    latent, noise, _ = best_start(
        scorer, candidates, ref_im, lambda candidate: _noise_variables(generator, candidate, options)[0]
    )
    return StartingPoint(latent, noise)


def rescore(
    scorer: Scorer,
    term_names: Sequence[str],
    latent: np.ndarray,
    noise: Sequence[np.ndarray],
    ref_im: np.ndarray,
) -> Rescore:
    """Latents and their noise scored again, forward-only, by ``scorer`` (the final scoring of
    the outputs of a backend that ``rescores``: ``onnx``'s, in onnxruntime)."""
    total, terms = scorer.score(latent, noise, ref_im)
    scores = {"TOTAL": np.asarray(total, np.float64)}
    scores.update({name: np.asarray(values, np.float64) for name, values in zip(term_names, terms)})
    return Rescore(scorer.runtime, scores)


def resolved_options(model: Generator, options: SearchOptions) -> SearchOptions:
    """``options`` as a search of ``model`` runs them: what they leave to the generator filled in
    (``latent_layout`` and ``backend``: its declared defaults), so a report records what ran, not
    ``None``."""
    return options.with_(
        latent_layout=options.layout(model.latent_layout.default), backend=chosen_backend(model, options).name
    )


def search(
    model: Generator,
    ref_im: np.ndarray,
    options: SearchOptions | None = None,
    init_latent: np.ndarray | None = None,
    init_noise: Sequence[np.ndarray] | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    objective: Objective | None = None,
    seeds: Sequence[int] | None = None,
) -> SearchResult:
    """Run PULSE on a batch of low-resolution references ``ref_im`` [B,3,r,r] in [0, 1].

    The random starting points are drawn for the whole batch from ``options.seed``, or, given
    ``seeds`` (one per image), for each image from its own seed: image i then starts as it would
    searched alone with ``options.seed = seeds[i]``, whatever else is in its batch.
    ``init_latent``/``init_noise`` replace the random starting point (as the reference's fixtures
    do). ``objective`` replaces the scoring layer ``build_objective`` makes for the options.
    """
    options = resolved_options(model, options or SearchOptions())
    backend = get_backend(options.backend)
    ref_np = np.ascontiguousarray(ref_im, dtype=np.float32)
    factor = _reference_factor(model, ref_np)
    batch = ref_np.shape[0]
    if seeds is None:
        rng = np.random.default_rng(options.seed)
        draw = partial(draw_start, model, batch, options, rng)
    else:
        if len(seeds) != batch:
            raise SearchError(f"{len(seeds)} seeds for a batch of {batch} references")
        draw = partial(draw_rows, model, options, [np.random.default_rng(seed) for seed in seeds])
    start = draw()
    if init_latent is not None:
        start.latent = np.asarray(init_latent, dtype=np.float32)
    if init_noise is not None:
        start.noise = [np.asarray(n, dtype=np.float32) for n in init_noise]
    if objective is None:
        objective = build_objective(model, factor, options)
    model.eval()
    for param in model.parameters():
        param.stop_gradient = True
    if options.starts > 1 and init_latent is None and init_noise is None:
        start = best_of_starts(model, objective, start, ref_np, options, draw)

    latent = paddle.to_tensor(start.latent, stop_gradient=False)
    noise, trainable_noise = _noise_variables(model, start, options)
    ref = paddle.to_tensor(ref_np)
    scheduler = make_scheduler(options.lr_schedule, options.steps, options.learning_rate)
    make_optimizer = plugins.load("optimizers", options.opt_name)
    variables = [latent, *trainable_noise]
    optimizer = SphericalOptimizer(make_optimizer(variables, scheduler), variables)

    names = ["TOTAL", *objective.term_names]
    log: dict[str, list[np.ndarray]] = {name: [] for name in names}
    best_total = np.full(batch, np.inf)
    best_image = np.zeros((batch, 3, model.resolution, model.resolution), np.float32)
    best_image_lr = np.zeros_like(ref_np)
    best_step = np.full(batch, -1, dtype=np.int64)
    best_l2 = np.full(batch, np.inf)
    best_latent = latent.numpy()
    best_noise = [n.numpy() for n in noise]
    trained_noise = [j for j, n in enumerate(noise) if not n.stop_gradient]
    errors: list[str | None] = [None] * batch
    eps = float(np.float32(options.eps))  # L2 is clamped to eps in float32: compare at that precision
    began = time.perf_counter()
    steps_run = 0
    for step in range(options.steps):
        optimizer.clear_grad()
        gen_im, gen_im_lr, total, terms = objective(latent, noise, ref)
        total_np = total.numpy().astype(np.float64)
        terms_np = terms.numpy().astype(np.float64)
        log["TOTAL"].append(total_np)
        for name, values in zip(names[1:], terms_np):
            log[name].append(values)
        l2 = terms_np[names.index("L2") - 1] if "L2" in names else None
        for i in np.flatnonzero(~np.isfinite(total_np)):
            if errors[i] is None:
                errors[i] = f"the loss became {total_np[i]} at step {step}; the search for this image stopped"
        improved = np.isfinite(total_np) & (total_np < best_total)
        if improved.any():
            images, images_lr = gen_im.numpy(), gen_im_lr.numpy()
            best_total[improved] = total_np[improved]
            best_image[improved] = images[improved]
            best_image_lr[improved] = images_lr[improved]
            best_step[improved] = step
            best_latent[improved] = latent.numpy()[improved]
            for j in trained_noise:
                best_noise[j][improved] = noise[j].numpy()[improved]
            if l2 is not None:
                best_l2[improved] = l2[improved]
        steps_run = step + 1
        if on_step is not None:
            report = StepReport(step, options.steps, total_np, l2)
            if options.save_intermediate:
                report.gen_im, report.gen_im_lr = gen_im.numpy(), gen_im_lr.numpy()
            on_step(report)
        if all(error is not None for error in errors):
            break
        if options.early_stop and l2 is not None and bool(np.all(best_l2 <= eps)):
            break
        paddle.where(paddle.isfinite(total), total, paddle.zeros_like(total)).sum().backward()
        optimizer.step()
        scheduler.step()
    seconds = time.perf_counter() - began
    eps_met = (best_l2 <= eps) & np.array([error is None for error in errors])
    scorer = backend.scorer(objective)
    final_scores = None
    if backend.rescores:
        final_scores = rescore(scorer, objective.term_names, best_latent, best_noise, ref_np)
    return SearchResult(
        log={name: np.stack(values) if values else np.zeros((0, batch)) for name, values in log.items()},
        best_image=np.clip(best_image, 0, 1),
        best_image_lr=np.clip(best_image_lr, 0, 1),
        best_step=best_step,
        best_l2=best_l2,
        eps_met=eps_met,
        final_latent=latent.numpy(),
        steps_run=steps_run,
        seconds=seconds,
        errors=errors,
        best_latent=best_latent,
        best_noise=best_noise,
        best_total=best_total,
        roles=backend.roles(objective, scorer),
        rescore=final_scores,
        layout=options.latent_layout,
    )

