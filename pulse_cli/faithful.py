"""The faithful search: PULSE's projected gradient descent, opened in stages so that a face searched
at the resolution its photo holds (32 or 64 px, not only 16) meets eps and stays photographic.

PULSE (``pulse_cli.search``) searches every row of the latent and the coarsest noise maps at once
from one random start. At 64 px that either stops far above eps (too few noise maps) or, with every
noise map open, meets it by writing image structure into the fine noise maps (a crosshatch). The
faithful search, measured on real photos (README, "Faithful faces"), runs two stages of PULSE's own
step, each a ``search`` call started where the last one ended, and makes the result consistent:

1. **coarse**: the best of a few random starts (scored forward-only), then one latent
   vector for every row (``tiled``), the published noise maps held fixed, at the options' learning
   rate: the face's shape, pose and colours, in the basin of a face the generator knows.
2. **fine**: every row its own vector (W+, GEOCROSS at 20 times PULSE's weight keeping them
   together), and the noise maps up to twice the input's side trainable, at a quarter of the
   learning rate:
   the detail the input holds, and no finer (maps beyond what the input constrains stay as the
   generator made them, so they cannot carry structure the input never asked for).

Each stage stops once every image meets eps (an image at eps is as consistent as PULSE asks, and
more steps only trade realism for GEOCROSS). The result is the last stage's, whose first step is the
coarse stage's best image: the fine stage can only improve on it.

3. **consistency**: what the generator could not reach, it is given: the lower band of the residual
   against the input is put back into the image (``pulse_cli.consistency``), the generator's finer
   detail kept. At eps a 64 px face is still off by 4.5 % RMS, and that is where the person is.

``FaithfulPlan`` holds these settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from pulse_cli.consistency import consistent
from pulse_cli.graphs.bicubic import downscale_array
from pulse_cli.graphs.generator import Generator
from pulse_cli.options import SearchOptions
from pulse_cli.search import SearchError, SearchResult, StepReport, search


@dataclass(frozen=True)
class FaithfulPlan:
    """How the faithful search shares its steps and opens the latent and the noise (the defaults are
    the study's choice: README, "Faithful faces").

    ``coarse_share``: the share of the steps the tiled stage gets; ``coarse_starts``: random starts
    scored forward-only before it; ``fine_layout``: the fine stage's latent layout unless the options
    name one; ``fine_lr_share``: its learning rate as a share of the options'; ``noise_reach``: its
    trainable noise maps reach this many times the input's side; ``fine_geocross``: GEOCROSS's weight
    in its loss (None, or a loss string without GEOCROSS: the options' loss string as it is);
    ``consistency_sigma``: the band of the residual put back, a Gaussian of this many input pixels
    (None: the generator's image as it is).
    """

    coarse_share: float = 0.3
    coarse_starts: int = 4
    fine_layout: str = "full"
    fine_lr_share: float = 0.25
    noise_reach: float = 2.0
    fine_geocross: float | None = 1.0  # PULSE's 0.05 let the W+ rows drift apart: waxier, less the person
    consistency_sigma: float | None = 0.75


@dataclass(frozen=True)
class Stage:
    """One stage of the faithful search: its name and the PULSE options it runs with."""

    name: str
    options: SearchOptions


def stages(
    generator: Generator, side: int, options: SearchOptions, plan: FaithfulPlan = FaithfulPlan()
) -> list[Stage]:
    """The stages for ``side``-pixel references: ``options.steps`` shared between them (a single
    step is all fine stage)."""
    coarse_steps = int(round(options.steps * plan.coarse_share))
    fine_steps = options.steps - coarse_steps
    reach = plan.noise_reach * side
    loss_str = options.loss_str
    terms = loss_str.split("+")
    geocross = [term for term in terms if term.strip().endswith("*GEOCROSS")]
    if plan.fine_geocross is not None and geocross:  # a loss without GEOCROSS is the user's choice
        kept = [term for term in terms if term not in geocross]
        loss_str = "+".join([*kept, f"{plan.fine_geocross:g}*GEOCROSS"])
    fine = options.with_(
        latent_layout=options.layout(plan.fine_layout),
        tile_latent=False,
        num_trainable_noise_layers=sum(r <= reach for r in generator.noise_resolutions),
        learning_rate=options.learning_rate * plan.fine_lr_share,
        loss_str=loss_str,
        steps=fine_steps,
        starts=1,
        early_stop=True,
    )
    if coarse_steps == 0:
        return [Stage("fine", fine.with_(starts=max(options.starts, plan.coarse_starts)))]
    coarse = options.with_(
        latent_layout="tiled",
        tile_latent=False,
        noise_type="fixed" if options.noise_type == "trainable" else options.noise_type,
        steps=coarse_steps,
        starts=max(options.starts, plan.coarse_starts),
        early_stop=True,
    )
    return [Stage("coarse", coarse), Stage("fine", fine)]


def _spread(generator: Generator, latent: np.ndarray, layout: str) -> np.ndarray:
    """A latent [B, G, D] laid out for ``layout``: rows copied to the rows they fed."""
    index = generator.expand_index(latent.shape[1])
    full = latent[:, index]
    if layout == "full":
        return full
    target = generator.row_index(layout)
    rows = [full[:, int(np.flatnonzero(target == row)[0])] for row in range(int(target.max()) + 1)]
    return np.stack(rows, axis=1)


def _joined(results: Sequence[SearchResult]) -> SearchResult:
    """The last stage's result, with every stage's log (a term one stage did not compute is NaN
    there), steps and seconds."""
    last = results[-1]
    offset = sum(result.steps_run for result in results[:-1])
    batch = len(last.best_l2)

    def logged(result: SearchResult, name: str) -> np.ndarray:  # a stage without the term: NaN
        return result.log.get(name, np.full((result.steps_run, batch), np.nan))

    names = dict.fromkeys(name for result in results for name in result.log)
    log = {name: np.concatenate([logged(result, name) for result in results]) for name in names}
    return replace(
        last,
        log=log,
        best_step=np.where(last.best_step >= 0, last.best_step + offset, last.best_step),
        steps_run=offset + last.steps_run,
        seconds=sum(result.seconds for result in results),
        errors=[
            next((result.errors[i] for result in results if result.errors[i] is not None), None)
            for i in range(len(last.errors))
        ],
    )


def faithful_search(
    model: Generator,
    ref_im: np.ndarray,
    options: SearchOptions | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    seeds: Sequence[int] | None = None,
    plan: FaithfulPlan = FaithfulPlan(),
) -> SearchResult:
    """The faithful search of a batch of references ``ref_im`` [B,3,r,r] in [0, 1] (see the
    module's docstring); ``options`` and ``seeds`` as ``pulse_cli.search.search`` takes them,
    ``plan`` how the stages are set."""
    options = options or SearchOptions()
    if ref_im.ndim != 4:
        raise SearchError(f"reference images must be [B,3,r,r], got shape {list(ref_im.shape)}")
    results: list[SearchResult] = []
    done = 0
    for stage in stages(model, int(ref_im.shape[-1]), options, plan):
        init_latent = init_noise = None
        if results:
            previous = results[-1]
            layout = stage.options.layout(model.latent_layout.default)
            init_latent = _spread(model, previous.best_latent, layout)
            init_noise = previous.best_noise

        def report(step: StepReport, before: int = done) -> None:
            if on_step is not None:
                on_step(replace(step, step=before + step.step, steps=options.steps))

        result = search(
            model, ref_im, stage.options, init_latent=init_latent, init_noise=init_noise,
            on_step=report, seeds=seeds,
        )  # fmt: skip
        results.append(result)
        done += result.steps_run
        if bool(np.all(result.eps_met)) or all(error is not None for error in result.errors):
            break
    joined = _joined(results)
    if plan.consistency_sigma is None:
        return joined
    return _made_consistent(joined, ref_im, options.eps, plan.consistency_sigma)


def _made_consistent(result: SearchResult, ref_im: np.ndarray, eps: float, sigma: float) -> SearchResult:
    """``result`` with its images made consistent with ``ref_im`` (``pulse_cli.consistency``), their
    L2 and eps measured again; an image whose search failed is left as it is."""
    ok = np.array([error is None for error in result.errors])
    if not ok.any():
        return result
    image = result.best_image.copy()
    image[ok] = consistent(result.best_image[ok], ref_im[ok], sigma)
    factor = image.shape[-1] // ref_im.shape[-1]
    image_lr = downscale_array(image, factor)
    l2 = np.where(ok, ((image_lr - ref_im) ** 2).mean(axis=(1, 2, 3)), result.best_l2)
    return replace(
        result,
        best_image=image,
        best_image_lr=np.clip(image_lr, 0, 1).astype(np.float32),
        best_l2=l2.astype(np.float32),
        eps_met=(l2 <= eps) & ok,
        search_l2=result.best_l2,
    )
