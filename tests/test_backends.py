"""The search backends: compiled gradients equal eager ones, ``--starts`` scores random starting
points (in onnxruntime for ``onnx``) and starts from the best, and each search says who did what."""

from __future__ import annotations

import json

import numpy as np
import paddle
import pytest

from pulse_cli import backends
from pulse_cli.models.stylegan import FFHQ, StyleGAN
from pulse_cli.options import SearchOptions
from pulse_cli.search import build_objective, draw_start, search


@pytest.fixture(scope="module")
def tiny_stylegan():
    """A tiny untrained StyleGAN (32 px, 8 latent layers)."""
    return FFHQ.build(resolution=32, fmap_base=64, fmap_max=16, seed=3)


@pytest.fixture(scope="module")
def references():
    return np.random.default_rng(21).random((2, 3, 8, 8), dtype=np.float32)


@pytest.mark.parametrize("onednn_backward", [False, True])
def test_compiled_synthesis_gives_the_dygraph_gradients_of_latent_and_noise(reference_dir, onednn_backward):
    small = json.loads((reference_dir / "stylegan_small.json").read_text())["config"]
    init = np.load(reference_dir / "trajectory_small_init.npz")
    model = StyleGAN.from_files(
        reference_dir / "stylegan_small.pt", gaussian_fit=reference_dir / "gaussian_fit.pt", **small
    )
    for parameter in model.parameters():
        parameter.stop_gradient = True
    eager = build_objective(model, 8, SearchOptions())

    def gradients(objective) -> list[np.ndarray]:
        latent = paddle.to_tensor(init["latent"], stop_gradient=False)
        noise = [paddle.to_tensor(init[f"noise_{i}"], stop_gradient=i >= 5) for i in range(model.num_layers)]
        _, _, total, _ = objective(latent, noise, paddle.to_tensor(init["ref_im"]))
        total.sum().backward()
        return [latent.grad.numpy()] + [n.grad.numpy() for n in noise[:5]]

    compiled = backends.compiled_objective(eager, onednn_backward=onednn_backward)
    for ours, reference in zip(gradients(compiled), gradients(eager)):
        assert np.abs(reference).max() > 0
        np.testing.assert_allclose(ours, reference, atol=1e-4 * np.abs(reference).max())


def _candidate_totals(generator, refs, options) -> np.ndarray:
    """Every candidate's total [K, B], scored by hand with the eager objective, as the search draws them."""
    rng = np.random.default_rng(options.seed)
    objective = build_objective(generator, 4, options.with_(backend="dygraph"))
    bad = options.bad_layers(len(generator.noise_resolutions))
    totals = []
    for _ in range(options.starts):
        start = draw_start(generator, len(refs), options, rng)
        noise = [
            paddle.zeros(n.shape) if i in bad else paddle.to_tensor(n) for i, n in enumerate(start.noise)
        ]
        with paddle.no_grad():
            totals.append(objective(paddle.to_tensor(start.latent), noise, paddle.to_tensor(refs))[2].numpy())
    return np.stack(totals)


@pytest.mark.parametrize(("backend", "tile_latent"), [("dygraph", False), ("onnx", False), ("onnx", True)])
def test_starts_search_from_each_images_lowest_loss_start(tiny_stylegan, references, backend, tile_latent):
    options = SearchOptions(steps=1, seed=9, starts=5, backend=backend, tile_latent=tile_latent)
    totals = _candidate_totals(tiny_stylegan, references, options)
    assert (totals.argmin(axis=0) != 0).any()  # the first start is not the best: the choice matters
    result = search(tiny_stylegan, references, options)
    np.testing.assert_allclose(result.log["TOTAL"][0], totals.min(axis=0), rtol=1e-5)


def test_one_start_is_the_plain_random_start(tiny_stylegan, references):
    options = SearchOptions(steps=1, seed=9, starts=3)
    totals = _candidate_totals(tiny_stylegan, references, options)
    plain = search(tiny_stylegan, references, options.with_(starts=1))
    np.testing.assert_allclose(plain.log["TOTAL"][0], totals[0], rtol=1e-5)


def test_onnx_scorer_is_checked_and_agrees_with_the_eager_objective(tiny_stylegan, references):
    objective = build_objective(tiny_stylegan, 4, SearchOptions(backend="onnx"))
    scorer = backends.forward_scorer(objective, "onnx")
    assert scorer.runtime.startswith("onnxruntime (")
    assert backends.forward_scorer(objective, "onnx") is scorer  # exported once per model and loss
    rng = np.random.default_rng(2)
    latent = rng.standard_normal((2, 8, 512), dtype=np.float32)
    noise = [rng.standard_normal((2, 1, r, r), dtype=np.float32) for r in tiny_stylegan.noise_resolutions]
    total, terms = scorer.score(latent, noise, references)
    eager_total, eager_terms = backends.PaddleScorer(objective).score(latent, noise, references)
    np.testing.assert_allclose(total, eager_total, rtol=1e-4)
    np.testing.assert_allclose(terms, eager_terms, rtol=1e-4)
    assert backends.roles(objective, scorer) == {
        "gradient steps": "Paddle dygraph",
        "forward-only scoring": scorer.runtime,
    }


def test_static_backend_compiles_without_onednn_what_onednn_cannot_train(dcgan_generator):
    """The DCGAN's transposed convolutions are inference-only in oneDNN: compiled without it."""
    refs = np.random.default_rng(5).random((1, 3, 16, 16), dtype=np.float32)
    options = SearchOptions(steps=3, seed=4)
    objective = build_objective(dcgan_generator, 4, options.with_(backend="static"))
    static = search(dcgan_generator, refs, options.with_(backend="static"), objective=objective)
    eager = search(dcgan_generator, refs, options)
    np.testing.assert_allclose(static.log["TOTAL"], eager.log["TOTAL"], rtol=1e-4)
    if backends.onednn_available():
        assert "oneDNN refused" in backends.runtime_of(objective)


@pytest.mark.parametrize(
    ("backend", "steps_on", "scoring_on"),
    [
        ("dygraph", "Paddle dygraph", "Paddle dygraph"),
        ("static", "Paddle to_static", "Paddle to_static"),
        ("onnx", "Paddle dygraph", "onnxruntime ("),
    ],
)
def test_search_records_which_runtime_did_what(tiny_stylegan, references, backend, steps_on, scoring_on):
    result = search(tiny_stylegan, references, SearchOptions(steps=3, seed=1, backend=backend))
    assert set(result.roles) == {"gradient steps", "forward-only scoring"}
    assert result.roles["gradient steps"].startswith(steps_on)
    assert result.roles["forward-only scoring"].startswith(scoring_on)
    if backend != "onnx":
        assert result.rescore is None  # their outputs are scored by the search itself
        return
    assert result.rescore.runtime == result.roles["forward-only scoring"]
    assert set(result.rescore.scores) == set(result.log)
    np.testing.assert_allclose(result.rescore.scores["TOTAL"], result.best_total, rtol=1e-4)
    np.testing.assert_allclose(result.rescore.scores["L2"], result.best_l2, rtol=1e-4)


def test_onednn_backward_is_used_for_networks_written_for_it(tiny_stylegan, dcgan_generator):
    """As their specs declare it (``Capabilities.onednn_backward``), not probed from the network."""
    def compiled(generator, **overrides):
        objective = build_objective(generator, 4, SearchOptions())
        return backends.compiled_objective(objective, **overrides).generator.synthesis

    assert tiny_stylegan.capabilities.onednn_backward and compiled(tiny_stylegan).onednn_backward
    assert not compiled(tiny_stylegan, onednn_backward=False).onednn_backward
    assert not dcgan_generator.capabilities.onednn_backward and not compiled(dcgan_generator).onednn_backward
    assert not backends.CompiledSynthesis(paddle.nn.Conv2D(3, 3, 3)).onednn_backward


def test_searches_of_one_generator_share_one_compiled_program(tiny_stylegan):
    # a compiled program keeps over a gigabyte at 1024 px and Paddle frees none of it: one per
    # search (a face, a faithful stage) ran a study of many faces out of memory
    options = SearchOptions(backend="static")
    first, second = (build_objective(tiny_stylegan, 4, options) for _ in range(2))
    assert isinstance(first.generator.synthesis, backends.CompiledSynthesis)
    assert first.generator.synthesis is second.generator.synthesis
    eager = build_objective(tiny_stylegan, 4, SearchOptions(backend="dygraph"))
    other = backends.compiled_objective(eager, onednn_backward=False)
    assert other.generator.synthesis is not first.generator.synthesis  # another setting, another program
