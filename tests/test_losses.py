"""PULSE's loss terms per image, the loss-string grammar, and the loss graph in static form and ONNX."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import paddle
import pytest

from pulse_cli.graphs.bicubic import BicubicDownsample
from pulse_cli.graphs.losses import (
    LossInputs,
    LossStringError,
    geocross,
    l1,
    l2,
    parse_loss_str,
    weighted_loss,
)

TERMS = {"L2": l2, "L1": l1, "GEOCROSS": geocross}
REFERENCE_LOSS = "100*L2+0.05*GEOCROSS+1*L1"


def reference_inputs(io, eps: float, latent_key: str = "latent") -> LossInputs:
    gen_im = paddle.to_tensor(io["gen_im"])
    factor = io["gen_im"].shape[-1] // io["ref_im"].shape[-1]
    return LossInputs(
        latent=paddle.to_tensor(io[latent_key]),
        gen_im=gen_im,
        gen_im_lr=BicubicDownsample(factor)(gen_im),
        ref_im=paddle.to_tensor(io["ref_im"]),
        eps=eps,
    )


@pytest.mark.parametrize(("eps", "tag"), [(2e-3, "eps0p002"), (0.5, "eps0p5")])
def test_batch_sums_match_pulse_loss_builder(reference_dir, eps, tag):
    io = np.load(reference_dir / "loss_io.npz")
    total, values = weighted_loss(parse_loss_str(REFERENCE_LOSS, TERMS), TERMS, reference_inputs(io, eps))
    assert total.shape == [2]
    assert float(total.sum()) == pytest.approx(float(io[f"total_{tag}"]), rel=1e-5)
    for name, value in values.items():
        assert value.shape == [2]
        assert float(value.sum()) == pytest.approx(float(io[f"{name}_{tag}"]), rel=1e-5)


def test_geocross_of_a_tiled_latent_is_zero(reference_dir):
    io = np.load(reference_dir / "loss_io.npz")
    value = geocross(reference_inputs(io, 2e-3, latent_key="latent_tiled"))
    assert value.shape == [2]
    assert float(value.sum()) == float(io["GEOCROSS_tiled"])


def test_terms_score_each_image_on_its_own():
    rng = np.random.default_rng(0)
    gen_lr = rng.random((3, 3, 8, 8), dtype=np.float32)
    ref = rng.random((3, 3, 8, 8), dtype=np.float32)
    latent = rng.standard_normal((3, 4, 16)).astype(np.float32)

    def inputs(order):
        return LossInputs(
            latent=paddle.to_tensor(latent[order]),
            gen_im=paddle.zeros([3, 3, 32, 32]),
            gen_im_lr=paddle.to_tensor(gen_lr[order]),
            ref_im=paddle.to_tensor(ref[order]),
            eps=1e-6,
        )

    order = [2, 0, 1]
    for term in TERMS.values():
        straight = term(inputs([0, 1, 2])).numpy()
        assert straight.shape == (3,)
        np.testing.assert_allclose(term(inputs(order)).numpy(), straight[order], rtol=1e-6)
    np.testing.assert_allclose(
        l2(inputs([0, 1, 2])).numpy(), ((gen_lr - ref) ** 2).mean(axis=(1, 2, 3)), rtol=1e-6
    )


def test_image_terms_are_floored_at_eps():
    same = paddle.ones([2, 3, 4, 4])
    inputs = LossInputs(latent=paddle.ones([2, 2, 8]), gen_im=same, gen_im_lr=same, ref_im=same, eps=0.125)
    np.testing.assert_array_equal(l2(inputs).numpy(), [0.125, 0.125])
    np.testing.assert_array_equal(l1(inputs).numpy(), [1.25, 1.25])


@pytest.mark.parametrize(
    ("loss_str", "expected"),
    [
        ("100*L2+0.05*GEOCROSS", [(100.0, "L2"), (0.05, "GEOCROSS")]),
        (" 1e-3 * L1 +  2.5*L2 ", [(1e-3, "L1"), (2.5, "L2")]),
        ("1E+2*L2", [(100.0, "L2")]),
        (".5*GEOCROSS", [(0.5, "GEOCROSS")]),
    ],
)
def test_parses_pulse_loss_strings(loss_str, expected):
    assert parse_loss_str(loss_str, TERMS) == expected


@pytest.mark.parametrize(
    "loss_str",
    ["", "L2", "100*", "100*L2+", "100*L2*3", "100 L2", "100*L2 0.05*GEOCROSS", "x*L2", "100*L2++1*L1"],
)
def test_malformed_loss_string_raises_a_one_line_error_listing_the_terms(loss_str):
    with pytest.raises(LossStringError) as caught:
        parse_loss_str(loss_str, TERMS)
    message = str(caught.value)
    assert "\n" not in message
    assert repr(loss_str) in message
    assert "GEOCROSS, L1, L2" in message


def test_unknown_term_is_named_in_the_error():
    with pytest.raises(LossStringError, match="unknown term 'LPIPS'.*GEOCROSS, L1, L2"):
        parse_loss_str("100*L2+1*LPIPS", TERMS)
    assert issubclass(LossStringError, ValueError)


def test_weighted_loss_weighs_each_term():
    inputs = LossInputs(
        latent=paddle.ones([1, 1, 4]),
        gen_im=paddle.zeros([1, 3, 8, 8]),
        gen_im_lr=paddle.zeros([1, 3, 2, 2]),
        ref_im=paddle.full([1, 3, 2, 2], 0.5),
        eps=0.0,
    )
    total, values = weighted_loss([(2.0, "L2"), (3.0, "L1"), (7.0, "GEOCROSS")], TERMS, inputs)
    assert sorted(values) == ["GEOCROSS", "L1", "L2"]
    np.testing.assert_allclose(total.numpy(), [2 * 0.25 + 3 * 5.0], rtol=1e-6)


def test_entry_points_name_these_terms():
    registered = {ep.name: ep.load() for ep in entry_points(group="pulse_cli.losses")}
    assert registered == TERMS


class LossGraph(paddle.nn.Layer):
    """The search's loss as one graph: downscale, then PULSE's default terms plus L1."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.down = BicubicDownsample(4)
        self.parsed = parse_loss_str(REFERENCE_LOSS, TERMS)
        self.eps = eps

    def forward(self, latent, gen_im, ref_im):
        inputs = LossInputs(latent, gen_im, self.down(gen_im), ref_im, self.eps)
        total, values = weighted_loss(self.parsed, TERMS, inputs)
        return total, values["L2"], values["GEOCROSS"], values["L1"]


def test_to_static_loss_graph_matches_dygraph_values_and_gradients(reference_dir):
    io = np.load(reference_dir / "loss_io.npz")
    latent = paddle.to_tensor(io["latent"], stop_gradient=False)
    gen_im = paddle.to_tensor(io["gen_im"], stop_gradient=False)
    ref_im = paddle.to_tensor(io["ref_im"])
    results = []
    for graph in (LossGraph(2e-3), paddle.jit.to_static(LossGraph(2e-3), full_graph=True)):
        total = graph(latent, gen_im, ref_im)[0]
        total.sum().backward()
        results.append((total.numpy(), latent.grad.numpy().copy(), gen_im.grad.numpy().copy()))
        latent.clear_grad()
        gen_im.clear_grad()
    for dygraph, static in zip(*results, strict=True):
        np.testing.assert_allclose(static, dygraph, rtol=1e-5, atol=1e-7)
    assert float(results[1][0].sum()) == pytest.approx(float(io["total_eps0p002"]), rel=1e-5)


def test_loss_graph_exports_to_onnx_and_matches(reference_dir, tmp_path):
    paddle2onnx = pytest.importorskip("paddle2onnx")
    ort = pytest.importorskip("onnxruntime")
    io = np.load(reference_dir / "loss_io.npz")
    spec = [
        paddle.static.InputSpec([None, 18, 512], "float32", "latent"),
        paddle.static.InputSpec([None, 3, 64, 64], "float32", "gen_im"),
        paddle.static.InputSpec([None, 3, 16, 16], "float32", "ref_im"),
    ]
    paddle.jit.save(LossGraph(2e-3), str(tmp_path / "loss"), input_spec=spec)
    params = tmp_path / "loss.pdiparams"
    paddle2onnx.export(
        str(tmp_path / "loss.json"),
        str(params) if params.exists() else "",
        str(tmp_path / "loss.onnx"),
        opset_version=13,
        optimize_tool="None",
    )
    session = ort.InferenceSession(str(tmp_path / "loss.onnx"))
    total, l2_value, geocross_value, l1_value = session.run(
        None, {name: io[name] for name in ("latent", "gen_im", "ref_im")}
    )
    for value, key in [(total, "total"), (l2_value, "L2"), (geocross_value, "GEOCROSS"), (l1_value, "L1")]:
        assert value.shape == (2,)
        assert float(value.sum()) == pytest.approx(float(io[f"{key}_eps0p002"]), rel=1e-5)
