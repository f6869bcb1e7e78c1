"""Compiled custom ops (``pulse_cli.graphs.op``): Paddle's values and gradients, in eager and
static graphs, and Paddle's own ops wherever the compiled ones cannot be had."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from ci import assert_fails_in_ci_and_skips_outside, skip_outside_ci

from pulse_cli.graphs.mobile_stylegan import haar_groups, haar_synthesis_kernel
from pulse_cli.graphs.op import instance_norm as op
from pulse_cli.graphs.op import inverse_haar as haar
from pulse_cli.graphs.op import library
from pulse_cli.graphs.op import noise_bias_leaky_relu as epilogue
from pulse_cli.graphs.op import styled_conv as conv

ROOT = Path(__file__).resolve().parent.parent


def _planes(seed: int, shape: tuple[int, ...]) -> list[paddle.Tensor]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32) * 3 + 0.7  # off-centre, as after a conv
    weight = rng.standard_normal(shape[1]).astype(np.float32)
    bias = rng.standard_normal(shape[1]).astype(np.float32)
    return [paddle.to_tensor(a, stop_gradient=False) for a in (x, weight, bias)]


def _values_and_gradients(norm, tensors: list[paddle.Tensor], upstream: paddle.Tensor) -> list[np.ndarray]:
    """The output and the gradients of the tensors that take one."""
    trained = [tensor for tensor in tensors if not tensor.stop_gradient]
    for tensor in trained:
        tensor.clear_gradient()
    out = norm(*tensors)
    (out * upstream).sum().backward()
    return [out.numpy(), *[tensor.grad.numpy() for tensor in trained]]


def _assert_same(
    run,
    reference,
    tensors: list[paddle.Tensor],
    names: list[str],
    rtol: float,
    atol: float,
    out_shape: tuple[int, ...] | None = None,
) -> None:
    """``run`` gives ``reference``'s output (of ``out_shape``, else the first tensor's shape) and
    gradients (of a fixed random projection) for those of ``tensors`` that take one; ``atol``
    relative to each expected array's largest magnitude."""
    shape = out_shape or tensors[0].shape
    upstream = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    got = _values_and_gradients(run, tensors, paddle.to_tensor(upstream))
    expected = _values_and_gradients(reference, tensors, paddle.to_tensor(upstream))
    for name, a, b in zip(names, got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * np.abs(b).max(), err_msg=name)


def _paddle_instance_norm(x: paddle.Tensor, weight: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
    return F.instance_norm(x, weight=weight, bias=bias, eps=op.EPS)


def compiled_or_skip(name: str = op.NAME):
    """The compiled op ``name``. Without a C++ compiler Paddle's op is used, and the tests of the
    compiled one skip; for any other reason it is missing (a failed build) they skip outside CI
    only."""
    built = library.op(name)
    if built is not None:
        return built
    if library.compiler() is None:
        pytest.skip(f"{library.why_not_compiled(name)}: Paddle's op is used")
    skip_outside_ci(f"no compiled op: {library.why_not_compiled(name)}")


@pytest.fixture(scope="module")
def compiled_op():
    return compiled_or_skip()


def test_in_ci_a_failed_build_fails_the_compiled_op_tests_and_only_a_missing_compiler_skips(monkeypatch):
    monkeypatch.delenv(op.ENV_SWITCH, raising=False)
    monkeypatch.setattr(library, "compiler", lambda: "/usr/bin/c++")
    failed = "the build failed: error: expected ';'"
    monkeypatch.setattr(library, "_built", lambda: (None, failed))
    assert_fails_in_ci_and_skips_outside(monkeypatch, compiled_or_skip, failed)
    monkeypatch.setattr(library, "compiler", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.skip.Exception):
        compiled_or_skip()


WHY_NOT = """
from pulse_cli.graphs.op import instance_norm as op
from pulse_cli.graphs.op import library
print(op.compiled() is None, library.why_not_compiled(op.NAME))
"""


@pytest.mark.parametrize(
    ("cxx", "why"), [("false", "the build failed: "), ("no-such-c++", "no C++ compiler")]
)
def test_a_compiler_that_fails_is_told_apart_from_a_missing_one(tmp_path, cxx, why):
    env = {**os.environ, "CXX": cxx, "PADDLE_EXTENSION_DIR": str(tmp_path)}  # a fresh build folder
    env.pop(op.ENV_SWITCH, None)
    run = subprocess.run([sys.executable, "-c", WHY_NOT], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"True {why}"), run.stdout


def test_a_library_built_for_another_cpu_is_not_reused(monkeypatch):
    here = library._build_folder()
    monkeypatch.setattr(library, "_cpu_features", lambda: b"flags : fpu sse sse2")  # an older CPU
    assert library._build_folder() != here and library._build_folder().parent == here.parent


PENDING = "from pulse_cli.graphs.op import library; print(library.build_pending())"


def test_a_build_is_pending_until_the_library_is_built_for_these_sources(compiled_op, tmp_path):
    def pending(extensions: str) -> str:
        environment = {**os.environ, "PADDLE_EXTENSION_DIR": extensions}
        run = subprocess.run([sys.executable, "-c", PENDING], capture_output=True, text=True, env=environment)
        return run.stdout.strip()

    assert pending(str(tmp_path)) == "True"  # nothing built there
    assert pending(str(library._build_folder().parent)) == "False"  # built by this process
    assert not library.build_pending()  # loaded here: nothing left to build


@pytest.mark.parametrize("shape", [(1, 5, 4, 4), (1, 3, 37, 29), (1, 16, 128, 128)])
def test_compiled_instance_norm_gives_paddles_values_and_gradients(compiled_op, shape):
    names = ["output", "d x", "d weight", "d bias"]
    _assert_same(op.instance_norm, _paddle_instance_norm, _planes(0, shape), names, rtol=1e-4, atol=1e-4)


def test_compiled_instance_norm_runs_in_a_static_graph_with_its_gradients(compiled_op):
    static = paddle.jit.to_static(op.instance_norm, full_graph=True)
    names = ["output", "d x", "d weight", "d bias"]
    _assert_same(static, op.instance_norm, _planes(2, (1, 6, 24, 24)), names, rtol=1e-5, atol=1e-6)


def test_paddles_instance_norm_is_used_when_compiled_ops_are_turned_off(monkeypatch):
    monkeypatch.setenv(op.ENV_SWITCH, "0")
    assert op.compiled() is None
    tensors = _planes(4, (1, 4, 9, 9))
    upstream = paddle.ones([1, 4, 9, 9])
    got = _values_and_gradients(op.instance_norm, tensors, upstream)
    expected = _values_and_gradients(_paddle_instance_norm, tensors, upstream)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_exported_graphs_hold_paddles_instance_norm_only(compiled_op, tmp_path):
    from pulse_cli.export.graphs import ExportGraph, TensorSpec
    from pulse_cli.export.static import save

    class Norm(paddle.nn.Layer):
        def forward(self, x, weight, bias):
            return op.instance_norm(x, weight, bias)

    specs = [TensorSpec("x", (1, 4, 8, 8)), TensorSpec("weight", (4,)), TensorSpec("bias", (4,))]
    layer = Norm()
    graph = ExportGraph(
        "norm", layer, specs, [TensorSpec("y", (1, 4, 8, 8))], [spec.input_spec() for spec in specs],
        lambda tensors: [layer(*tensors)],
    )  # fmt: skip
    save(graph, tmp_path / "norm")
    program = (tmp_path / "norm.json").read_text()
    assert "pulse_instance_norm" not in program and "instance_norm" in program


def test_compiled_instance_norm_is_as_accurate_as_paddles_on_a_nearly_constant_plane(compiled_op):
    # a random StyleGAN's first block: planes of 4x4 around a large value, variance far below eps
    x = (np.random.default_rng(5).standard_normal((1, 6, 4, 4)) * 1e-3 + 5.0).astype(np.float32)
    tensors = [paddle.to_tensor(a) for a in (x, np.ones(6, np.float32), np.zeros(6, np.float32))]
    exact = x.astype(np.float64) - x.astype(np.float64).mean(axis=(2, 3), keepdims=True)
    exact /= np.sqrt((exact**2).mean(axis=(2, 3), keepdims=True) + op.EPS)
    compiled_error = np.abs(op.instance_norm(*tensors).numpy() - exact).max()
    paddle_error = np.abs(_paddle_instance_norm(*tensors).numpy() - exact).max()
    assert compiled_error <= paddle_error


def test_compiled_instance_norm_refuses_a_weight_without_one_value_per_plane(compiled_op):
    x, weight, bias = _planes(4, (2, 3, 8, 8))  # 6 planes, 3 weights: the kernel would read past them
    with pytest.raises(OSError, match="one value per plane"):  # how Paddle raises a PD_CHECK
        compiled_op(x, weight, bias, op.EPS, 1)


def _epilogue_inputs(seed: int, shape: tuple[int, ...]) -> list[paddle.Tensor]:
    rng = np.random.default_rng(seed)
    n, c, h, w = shape
    arrays = [rng.standard_normal(dims) for dims in (shape, (n, 1, h, w), (1, c, 1, 1))]
    return [paddle.to_tensor(a.astype(np.float32), stop_gradient=False) for a in arrays]


def _paddle_epilogue(x: paddle.Tensor, noise: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
    return F.leaky_relu(x + noise + bias, epilogue.SLOPE)


@pytest.fixture(scope="module")
def compiled_epilogue():
    return compiled_or_skip(epilogue.NAME)


@pytest.mark.parametrize("shape", [(1, 5, 4, 4), (2, 3, 37, 29), (1, 16, 128, 128)])
def test_compiled_noise_bias_leaky_relu_gives_paddles_values_and_gradients(compiled_epilogue, shape):
    tensors = _epilogue_inputs(6, shape)
    assert epilogue.fused(tensors[0], tensors[1])
    names = ["output", "d x", "d noise", "d bias"]
    _assert_same(epilogue.noise_bias_leaky_relu, _paddle_epilogue, tensors, names, rtol=1e-5, atol=1e-5)


def test_compiled_noise_bias_leaky_relu_runs_in_a_static_graph_with_its_gradients(compiled_epilogue):
    static = paddle.jit.to_static(epilogue.noise_bias_leaky_relu, full_graph=True)
    tensors = _epilogue_inputs(8, (2, 6, 24, 24))
    names = ["output", "d x", "d noise", "d bias"]
    _assert_same(static, epilogue.noise_bias_leaky_relu, tensors, names, rtol=1e-6, atol=1e-6)


def test_the_epilogue_is_left_to_paddles_ops_where_the_compiled_one_cannot_run(monkeypatch):
    x, noise, _ = _epilogue_inputs(10, (2, 3, 8, 8))
    assert not epilogue.fused(x, noise[:1])  # one noise map for a batch of two: a broadcast
    monkeypatch.setenv(library.ENV_SWITCH, "0")
    assert not epilogue.fused(x, noise)


def test_compiled_noise_bias_leaky_relu_refuses_a_bias_without_one_value_per_channel(compiled_epilogue):
    x, noise, bias = _epilogue_inputs(11, (1, 4, 8, 8))
    with pytest.raises(OSError, match="one bias value per channel"):  # how Paddle raises a PD_CHECK
        compiled_epilogue(x, noise, bias[:, :2], epilogue.SLOPE, 1)


def _bands(seed: int, shape: tuple[int, ...]) -> list[paddle.Tensor]:
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(dims) for dims in (shape, shape[:2])]
    return [paddle.to_tensor(a.astype(np.float32), stop_gradient=False) for a in arrays]


def _paddle_inverse_haar(x: paddle.Tensor, scale: paddle.Tensor) -> paddle.Tensor:
    channels = x.shape[1] // 4
    bands = haar_groups(x * scale.unsqueeze([2, 3]))
    return F.pixel_shuffle(F.conv2d(bands, haar_synthesis_kernel(channels), groups=channels), 2)


@pytest.fixture(scope="module")
def compiled_haar():
    return compiled_or_skip(haar.NAME)


@pytest.mark.parametrize("shape", [(1, 4, 3, 5), (2, 12, 9, 7), (1, 64, 64, 64)])
def test_compiled_inverse_haar_gives_paddles_values_and_gradients(compiled_haar, shape):
    tensors = _bands(14, shape)
    assert haar.fused(tensors[0])
    out_shape = (shape[0], shape[1] // 4, 2 * shape[2], 2 * shape[3])
    names = ["output", "d x", "d scale"]
    _assert_same(haar.inverse_haar, _paddle_inverse_haar, tensors, names, 1e-5, 1e-5, out_shape)


def test_compiled_inverse_haar_runs_in_a_static_graph_with_its_gradients(compiled_haar):
    static = paddle.jit.to_static(haar.inverse_haar, full_graph=True)
    names = ["output", "d x", "d scale"]
    _assert_same(static, haar.inverse_haar, _bands(15, (2, 8, 6, 6)), names, 1e-6, 1e-6, (2, 2, 12, 12))


def test_the_inverse_haar_is_left_to_paddles_ops_where_the_compiled_one_cannot_run(monkeypatch):
    x, _ = _bands(16, (1, 8, 4, 4))
    monkeypatch.setenv(library.ENV_SWITCH, "0")
    assert not haar.fused(x)


def test_compiled_inverse_haar_refuses_a_scale_without_one_value_per_band(compiled_haar):
    x, scale = _bands(17, (1, 8, 4, 4))
    with pytest.raises(OSError, match="one scale per image and band"):  # how Paddle raises a PD_CHECK
        compiled_haar(x, scale[:, :4], 1)


def _styled_conv_inputs(seed: int, shape: tuple[int, ...], outputs: int) -> list[paddle.Tensor]:
    """x, depthwise and pointwise weights, modulation, noise, bias: the weights frozen, as in a search."""
    n, c, h, w = shape
    rng = np.random.default_rng(seed)
    dims = [shape, (c, 1, 3, 3), (n, c), (outputs, c, 1, 1), (n, 1, h, w), (1, outputs, 1, 1)]
    tensors = [paddle.to_tensor(rng.standard_normal(d).astype(np.float32)) for d in dims]
    for i in (0, 2, 4):
        tensors[i].stop_gradient = False
    return tensors


def _paddle_styled_conv(x, depthwise, modulation, pointwise, noise, bias):
    t = F.conv2d(x * modulation.unsqueeze([2, 3]), depthwise, padding=1, groups=x.shape[1])
    return F.leaky_relu(F.conv2d(t, pointwise) + noise + bias, epilogue.SLOPE)


STYLED_CONV_GRADIENTS = ["output", "d x", "d modulation", "d noise"]


@pytest.fixture(scope="module")
def compiled_conv():
    return compiled_or_skip(conv.NAME)


@pytest.mark.parametrize(
    ("shape", "outputs"), [((1, 4, 5, 6), 3), ((2, 8, 9, 7), 6), ((1, 2, 1, 5), 2), ((1, 32, 64, 64), 64)]
)
def test_compiled_styled_conv_gives_paddles_values_and_gradients(compiled_conv, shape, outputs):
    tensors = _styled_conv_inputs(18, shape, outputs)
    assert conv.fused(tensors[0], tensors[4], [tensors[i] for i in (1, 3, 5)])
    out_shape = (shape[0], outputs, *shape[2:])
    _assert_same(conv.styled_conv, _paddle_styled_conv, tensors, STYLED_CONV_GRADIENTS, 1e-5, 1e-5, out_shape)


def test_compiled_styled_conv_runs_in_a_static_graph_with_its_gradients(compiled_conv):
    static = paddle.jit.to_static(conv.styled_conv, full_graph=True)
    tensors = _styled_conv_inputs(19, (2, 6, 12, 10), 4)
    _assert_same(static, _paddle_styled_conv, tensors, STYLED_CONV_GRADIENTS, 1e-5, 1e-5, (2, 4, 12, 10))


def test_the_styled_conv_is_left_to_paddles_convs_where_a_weight_trains_or_compiled_ops_are_off(
    compiled_conv, monkeypatch
):
    x, depthwise, _, pointwise, noise, bias = _styled_conv_inputs(20, (1, 4, 8, 8), 4)
    assert conv.fused(x, noise, [depthwise, pointwise, bias])
    bias.stop_gradient = False  # the op makes no gradient for the weights or the bias
    assert not conv.fused(x, noise, [depthwise, pointwise, bias])
    bias.stop_gradient = True
    assert not conv.fused(paddle.concat([x, x]), noise, [])  # one noise map for a batch of two: a broadcast
    monkeypatch.setenv(library.ENV_SWITCH, "0")
    assert not conv.fused(x, noise, [depthwise, pointwise, bias])


def test_compiled_styled_conv_refuses_a_modulation_without_one_value_per_image_and_channel(compiled_conv):
    x, depthwise, modulation, pointwise, noise, bias = _styled_conv_inputs(21, (1, 4, 8, 8), 4)
    with pytest.raises(OSError, match="a modulation"):  # how Paddle raises a PD_CHECK
        compiled_conv(x, depthwise, modulation[:, :2], pointwise, noise, bias, epilogue.SLOPE, 1)
