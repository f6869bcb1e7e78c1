"""The faithful search strategy: PULSE's step in two stages (tiled with the published noise, then
W+ with the noise the input constrains), each started where the last ended, the result made
consistent with its input; PULSE's own strategy unchanged."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from pulse_cli.faithful import FaithfulPlan, faithful_search, stages
from pulse_cli.models.mobile_stylegan import MOBILE_STYLEGAN_FFHQ
from pulse_cli.options import SearchOptions
from pulse_cli.search import search
from pulse_cli.strategies import resolved_options, run_search


@pytest.fixture(scope="module")
def small_mobile():
    """A 32 px random MobileStyleGAN: the default model's architecture, small."""
    paddle.seed(5)
    return MOBILE_STYLEGAN_FFHQ.build(**MOBILE_STYLEGAN_FFHQ.small_config)


@pytest.fixture(scope="module")
def reference(small_mobile):
    """A 16 px reference: the downscale of an image the generator makes from another start."""
    rng = np.random.default_rng(2)
    rows = small_mobile.num_layers
    latent = paddle.to_tensor(rng.standard_normal((1, rows, small_mobile.latent_dim), dtype=np.float32))
    noise = [paddle.to_tensor(n) for n in small_mobile.default_noise]
    with paddle.no_grad():
        image = small_mobile(small_mobile.map_latent(latent), noise)
        factor = small_mobile.resolution // 16
        return paddle.nn.functional.avg_pool2d(image, factor).numpy()


def test_the_stages_share_the_steps_and_open_latent_and_noise_in_turn(small_mobile):
    options = SearchOptions(steps=20, strategy="faithful")
    coarse, fine = stages(small_mobile, 4, options)
    assert coarse.options.steps == round(20 * FaithfulPlan().coarse_share)
    assert coarse.options.steps + fine.options.steps == 20
    assert coarse.options.layout(small_mobile.latent_layout.default) == "tiled"
    assert coarse.options.noise_type == "fixed" and coarse.options.starts > 1
    assert fine.options.layout(small_mobile.latent_layout.default) == "full"
    assert fine.options.learning_rate == pytest.approx(options.learning_rate * FaithfulPlan().fine_lr_share)
    opened = [r for r in small_mobile.noise_resolutions if r <= FaithfulPlan().noise_reach * 4]
    assert fine.options.num_trainable_noise_layers == len(opened)
    assert 0 < len(opened) < len(small_mobile.noise_resolutions)  # the finest maps stay as made
    assert coarse.options.early_stop and fine.options.early_stop
    assert coarse.options.loss_str == options.loss_str  # tiled: GEOCROSS is zero anyway
    assert fine.options.loss_str == f"100*L2+{FaithfulPlan().fine_geocross:g}*GEOCROSS"


def test_the_fine_stage_starts_from_the_coarse_stages_best_image(small_mobile, reference):
    options = SearchOptions(steps=10, seed=4, strategy="faithful", eps=1e-6)
    coarse_options, fine_options = (stage.options for stage in stages(small_mobile, 16, options))
    coarse = search(small_mobile, reference, coarse_options)
    result = faithful_search(small_mobile, reference, options)
    steps = coarse.steps_run
    assert result.steps_run == options.steps  # eps 1e-6: no stage stops early
    np.testing.assert_allclose(result.log["TOTAL"][:steps], coarse.log["TOTAL"], rtol=1e-5)
    # the first fine step scores the coarse stage's best latent, spread over every row
    np.testing.assert_allclose(result.log["L2"][steps], coarse.best_l2, rtol=1e-4)
    assert result.best_latent.shape[1] == small_mobile.num_layers
    assert result.best_l2[0] <= coarse.best_l2[0] * (1 + 1e-5)


def test_progress_counts_the_steps_of_every_stage(small_mobile, reference):
    seen = []
    options = SearchOptions(steps=6, seed=1, strategy="faithful", eps=1e-6)
    run_search(small_mobile, reference, options, on_step=lambda step: seen.append((step.step, step.steps)))
    assert seen == [(step, 6) for step in range(6)]


def test_a_stage_that_meets_eps_ends_the_search(small_mobile, reference):
    options = SearchOptions(steps=10, seed=4, strategy="faithful", eps=1.0)  # met at once
    result = faithful_search(small_mobile, reference, options)
    assert result.steps_run == 1 and bool(result.eps_met[0])


def test_the_pulse_strategy_is_pulses_search_unchanged(small_mobile, reference):
    options = SearchOptions(steps=3, seed=7)
    assert options.strategy == "pulse"
    ours = run_search(small_mobile, reference, options)
    paper = search(small_mobile, reference, options)
    np.testing.assert_array_equal(ours.log["TOTAL"], paper.log["TOTAL"])
    np.testing.assert_array_equal(ours.best_image, paper.best_image)


def test_an_unknown_strategy_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown search strategy 'fast'; known: pulse, faithful"):
        SearchOptions(strategy="fast")


def test_tile_latent_keeps_the_fine_stage_tiled_and_is_recorded_so(small_mobile):
    options = SearchOptions(steps=10, strategy="faithful", tile_latent=True)
    fine = stages(small_mobile, 4, options)[-1]
    assert fine.options.layout(small_mobile.latent_layout.default) == "tiled"
    assert resolved_options(small_mobile, options).latent_layout == "tiled"
    assert resolved_options(small_mobile, options.with_(tile_latent=False)).latent_layout == "full"


def test_a_loss_without_geocross_is_searched_as_given_in_every_stage(small_mobile, reference):
    options = SearchOptions(steps=4, seed=2, strategy="faithful", loss_str="10*L2+1*L1", eps=1e-6)
    assert all(stage.options.loss_str == "10*L2+1*L1" for stage in stages(small_mobile, 16, options))
    result = faithful_search(small_mobile, reference, options)
    assert set(result.log) == {"TOTAL", "L2", "L1"} and result.log["L1"].shape == (4, 1)


def test_the_search_ends_consistent_with_its_input_the_generators_l2_kept(small_mobile, reference):
    options = SearchOptions(steps=4, seed=3, strategy="faithful", eps=1e-6)
    made = faithful_search(small_mobile, reference, options, plan=FaithfulPlan(consistency_sigma=None))
    result = faithful_search(small_mobile, reference, options)
    assert made.search_l2 is None
    np.testing.assert_allclose(result.search_l2, made.best_l2)
    assert result.best_l2[0] < 0.5 * made.best_l2[0]
    np.testing.assert_allclose(result.best_latent, made.best_latent)  # the search itself unchanged
    assert not np.allclose(result.best_image, made.best_image)


def test_consistency_is_measured_against_eps_again(small_mobile, reference):
    options = SearchOptions(steps=2, seed=3, strategy="faithful", eps=1e-6)
    result = faithful_search(small_mobile, reference, options)
    assert not bool(result.eps_met[0])  # the finest band left is above 1e-6
    loose = faithful_search(small_mobile, reference, options.with_(eps=float(result.best_l2[0]) * 1.01))
    assert bool(loose.eps_met[0]) and not bool(loose.search_l2[0] <= loose.best_l2[0])
