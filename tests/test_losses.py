"""PULSE's loss terms per image, the loss-string grammar, the weighted sum the search runs
(``Objective.forward``), and that sum in static form and ONNX."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import paddle
import pytest

from pulse_cli.graphs.bicubic import BicubicDownsample
from pulse_cli.graphs.generator import Generator
from pulse_cli.graphs.losses import LossInputs, LossStringError, geocross, l1, l2, parse_loss_str
from pulse_cli.graphs.objective import Objective

TERMS = {"L2": l2, "L1": l1, "GEOCROSS": geocross}
REFERENCE_LOSS = "100*L2+0.05*GEOCROSS+1*L1"


class ImageSynthesis(paddle.nn.Layer):
    """A synthesis network that makes one given image (a parameter, so gradients reach it)
    whatever the latent: the objective then scores exactly that image."""

    def __init__(self, image: np.ndarray) -> None:
        super().__init__()
        self.image = self.create_parameter(
            list(image.shape), default_initializer=paddle.nn.initializer.Assign(image * 2 - 1)
        )

    def forward(self, latent_in, noise):
        return self.image + latent_in.sum() * 0.0  # [-1, 1], as a synthesis network's output


def image_objective(
    gen_im: np.ndarray, ref_side: int, num_layers: int, latent_dim: int, loss_str: str, eps: float
) -> Objective:
    """The search's ``Objective`` over a generator that makes ``gen_im``: the weighted sum the
    search runs, scoring a fixed image."""
    generator = Generator(
        ImageSynthesis(gen_im), name="image", resolution=gen_im.shape[-1],
        num_layers=num_layers, latent_dim=latent_dim,
    )  # fmt: skip
    return Objective.from_loss_str(generator, gen_im.shape[-1] // ref_side, loss_str, eps, TERMS)


def reference_objective(io, eps: float, loss_str: str = REFERENCE_LOSS) -> Objective:
    _, num_layers, latent_dim = io["latent"].shape
    return image_objective(io["gen_im"], io["ref_im"].shape[-1], num_layers, latent_dim, loss_str, eps)


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
    objective = reference_objective(io, eps)
    with paddle.no_grad():
        _, _, total, values = objective(paddle.to_tensor(io["latent"]), [], paddle.to_tensor(io["ref_im"]))
    assert total.shape == [2]
    assert float(total.sum()) == pytest.approx(float(io[f"total_{tag}"]), rel=1e-5)
    assert values.shape == [3, 2]
    for name, value in zip(objective.term_names, values, strict=True):
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
    ("loss_str", "expected"),
    [
        ("100*L2+1*L2", [(101.0, "L2")]),
        ("1*L2+0.05*GEOCROSS+2*L2+0.05*GEOCROSS", [(3.0, "L2"), (0.1, "GEOCROSS")]),
    ],
)
def test_a_repeated_term_is_one_term_with_its_weights_summed(loss_str, expected):
    parsed = parse_loss_str(loss_str, TERMS)
    assert [name for _, name in parsed] == [name for _, name in expected]
    np.testing.assert_allclose([weight for weight, _ in parsed], [weight for weight, _ in expected])


def test_an_objective_refuses_a_term_given_twice():
    with pytest.raises(ValueError, match="each loss term once"):
        Objective(None, 1, [(1.0, "L2"), (2.0, "L2")], TERMS, 1e-3)


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


def test_objective_weighs_each_term_and_stacks_them_in_order():
    objective = image_objective(np.zeros((1, 3, 8, 8), np.float32), 2, 1, 4, "2*L2+3*L1+7*GEOCROSS", 0.0)
    _, _, total, values = objective(paddle.ones([1, 1, 4]), [], paddle.full([1, 3, 2, 2], 0.5))
    assert objective.term_names == ["L2", "L1", "GEOCROSS"]
    np.testing.assert_allclose(values.numpy(), [[0.25], [5.0], [0.0]], rtol=1e-6)  # one layer: no GEOCROSS
    np.testing.assert_allclose(total.numpy(), [2 * 0.25 + 3 * 5.0], rtol=1e-6)


def test_entry_points_name_these_terms():
    registered = {ep.name: ep.load() for ep in entry_points(group="pulse_cli.losses")}
    assert registered == TERMS


class LossGraph(paddle.nn.Layer):
    """The objective's loss as one graph: latent and reference in, total and each term out."""

    def __init__(self, objective: Objective) -> None:
        super().__init__()
        self.objective = objective

    def forward(self, latent, ref_im):
        _, _, total, values = self.objective(latent, [], ref_im)
        return total, values[0], values[1], values[2]


def test_to_static_loss_graph_matches_dygraph_values_and_gradients(reference_dir):
    io = np.load(reference_dir / "loss_io.npz")
    latent = paddle.to_tensor(io["latent"], stop_gradient=False)
    ref_im = paddle.to_tensor(io["ref_im"])
    results = []
    for compile_graph in (lambda graph: graph, lambda graph: paddle.jit.to_static(graph, full_graph=True)):
        objective = reference_objective(io, 2e-3)
        total = compile_graph(LossGraph(objective))(latent, ref_im)[0]
        total.sum().backward()
        image = objective.generator.synthesis.image
        results.append((total.numpy(), latent.grad.numpy().copy(), image.grad.numpy().copy()))
        latent.clear_grad()
    for dygraph, static in zip(*results, strict=True):
        np.testing.assert_allclose(static, dygraph, rtol=1e-5, atol=1e-7)
    assert float(results[1][0].sum()) == pytest.approx(float(io["total_eps0p002"]), rel=1e-5)


def test_loss_graph_exports_to_onnx_and_matches(reference_dir, tmp_path):
    paddle2onnx = pytest.importorskip("paddle2onnx")
    ort = pytest.importorskip("onnxruntime")
    io = np.load(reference_dir / "loss_io.npz")
    spec = [
        paddle.static.InputSpec([2, 18, 512], "float32", "latent"),
        paddle.static.InputSpec([2, 3, 16, 16], "float32", "ref_im"),
    ]
    paddle.jit.save(LossGraph(reference_objective(io, 2e-3)), str(tmp_path / "loss"), input_spec=spec)
    params = tmp_path / "loss.pdiparams"
    paddle2onnx.export(
        str(tmp_path / "loss.json"),
        str(params) if params.exists() else "",
        str(tmp_path / "loss.onnx"),
        opset_version=13,
        optimize_tool="None",
    )
    session = ort.InferenceSession(str(tmp_path / "loss.onnx"))
    feed = {name: io[name] for name in ("latent", "ref_im")}
    total, l2_value, geocross_value, l1_value = session.run(None, feed)
    for value, key in [(total, "total"), (l2_value, "L2"), (geocross_value, "GEOCROSS"), (l1_value, "L1")]:
        assert value.shape == (2,)
        assert float(value.sum()) == pytest.approx(float(io[f"{key}_eps0p002"]), rel=1e-5)
