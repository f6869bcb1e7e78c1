"""Latent layouts: how many vectors a search optimizes and which synthesis rows each feeds
(``full``, ``tiled``, ``shared``), declared per generator, on MobileStyleGAN's small random build."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from pulse_cli import backends
from pulse_cli.graphs.mobile_stylegan import shared_style_rows
from pulse_cli.models.mobile_stylegan import DEFAULT_LAYOUT, MOBILE_STYLEGAN_FFHQ
from pulse_cli.models.stylegan import FFHQ
from pulse_cli.options import SearchOptions
from pulse_cli.search import build_objective, draw_start, search
from pulse_cli.upsample.write import OutputWriter


@pytest.fixture(scope="module")
def small_mobile():
    return MOBILE_STYLEGAN_FFHQ.build(**MOBILE_STYLEGAN_FFHQ.small_config)


@pytest.fixture(scope="module")
def references(small_mobile):
    side = small_mobile.resolution // 4
    return np.random.default_rng(0).random((2, 3, side, side), dtype=np.float32)


def test_shared_layout_feeds_each_group_of_rows_one_vector(small_mobile):
    groups = shared_style_rows(len(small_mobile.synthesis.blocks))
    assert small_mobile.latent_layout.shared_rows == tuple(groups)
    rows = small_mobile.latent_rows("shared")
    assert rows == small_mobile.num_layers - len(groups)
    latent = np.random.default_rng(1).standard_normal((2, rows, 512)).astype(np.float32)
    spread = small_mobile.expand_latent(paddle.to_tensor(latent)).numpy()
    assert spread.shape == (2, small_mobile.num_layers, 512)
    for first, second in groups:
        np.testing.assert_array_equal(spread[:, first], spread[:, second])
    # every searched vector feeds some row, and no other two rows are alike
    assert len(np.unique(spread[0], axis=0)) == rows


def test_each_generator_declares_its_default_layout():
    assert FFHQ.build(**FFHQ.small_config).latent_layout.default == "full"  # PULSE's W+
    mobile = MOBILE_STYLEGAN_FFHQ.build(**MOBILE_STYLEGAN_FFHQ.small_config)
    assert mobile.latent_layout.default == DEFAULT_LAYOUT


@pytest.mark.parametrize(
    ("asked", "tile_latent", "rows"), [(None, False, "default"), ("full", False, 8), ("shared", False, 6),
                                       ("tiled", False, 1), (None, True, 1)],
)  # fmt: skip
def test_search_optimizes_as_many_vectors_as_the_layout_has(
    small_mobile, references, asked, tile_latent, rows
):
    options = SearchOptions(steps=2, seed=1, latent_layout=asked, tile_latent=tile_latent)
    expected = small_mobile.latent_rows(small_mobile.latent_layout.default) if rows == "default" else rows
    result = search(small_mobile, references, options)
    assert result.best_latent.shape == (2, expected, 512)
    assert result.layout == options.layout(small_mobile.latent_layout.default)


def test_a_layouts_latent_scores_as_its_spread_full_latent(small_mobile, references):
    """The objective spreads a shared latent over the rows before mapping it, so GEOCROSS (on the
    mapped rows) and every other term score it exactly as the full latent it stands for."""
    objective = build_objective(small_mobile, 4, SearchOptions())
    start = draw_start(small_mobile, 2, SearchOptions(latent_layout="shared"), np.random.default_rng(2))
    noise = [paddle.to_tensor(n) for n in start.noise]
    shared = paddle.to_tensor(start.latent)
    refs = paddle.to_tensor(references)
    with paddle.no_grad():
        _, _, total, terms = objective(shared, noise, refs)
        _, _, total_full, _ = objective(small_mobile.expand_latent(shared), noise, refs)
    np.testing.assert_array_equal(total.numpy(), total_full.numpy())
    assert terms.numpy()[1].min() > 0  # GEOCROSS sees the distinct vectors


@pytest.mark.parametrize("backend", ["static", "onnx"])
def test_backends_search_the_shared_layout(small_mobile, references, backend):
    options = SearchOptions(steps=2, seed=1, latent_layout="shared", backend=backend)
    result = search(small_mobile, references, options)
    assert np.isfinite(result.best_total).all()
    if backend == "onnx":  # onnxruntime's scores of the best latents agree with the search's
        np.testing.assert_allclose(result.rescore.scores["TOTAL"], result.best_total, rtol=1e-3)
    assert backends.get_backend(backend).name == backend


def test_saved_latent_names_its_layout_and_remakes_the_output(small_mobile, references, tmp_path):
    options = SearchOptions(steps=2, seed=1, latent_layout="shared", noise_type="fixed")
    result = search(small_mobile, references, options)
    OutputWriter(tmp_path, save_latent=True).write_latent("a", 0, result)
    with np.load(tmp_path / "a.npz") as saved:
        assert str(saved["layout"]) == "shared"
        latent = paddle.to_tensor(saved["latent"][None])
        noise = [paddle.to_tensor(saved[f"noise_{k}"][None]) for k in range(len(result.best_noise))]
    with paddle.no_grad():
        image = small_mobile(small_mobile.map_latent(small_mobile.expand_latent(latent)), noise).numpy()
    np.testing.assert_allclose(np.clip(image[0], 0, 1), result.best_image[0], atol=1e-5)
