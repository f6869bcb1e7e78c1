"""MobileStyleGAN: the IR read as data, the network's shapes and wavelet decoder, and parity with
OpenVINO on the published weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from pulse_cli.backends.compiled import CompiledSynthesis
from pulse_cli.export.bundle import export_model
from pulse_cli.graphs.generator import Generator
from pulse_cli.graphs.mobile_stylegan import (
    MobileSynthesis,
    haar_synthesis_kernel,
    inverse_haar,
    modulated_conv,
    shared_style_rows,
)
from pulse_cli.graphs.op import library
from pulse_cli.models import mobile_stylegan
from pulse_cli.models.mobile_stylegan import MOBILE_STYLEGAN_FFHQ
from pulse_cli.models.openvino_ir import read_ir
from pulse_cli.weights import WeightsError

SMALL = (8, 8, 4)  # 4 → 32 px: 8 style rows, 5 noise maps


def test_small_network_maps_any_batch_of_latents_and_noise_to_images_of_its_resolution():
    paddle.seed(0)
    synthesis = MobileSynthesis(SMALL)
    assert (synthesis.resolution, synthesis.num_layers) == (32, 8)
    assert synthesis.noise_resolutions == (4, 8, 8, 16, 16)
    latent = paddle.randn([3, synthesis.num_layers, 512])
    noise = synthesis.default_noise(3)
    assert [list(n.shape) for n in noise] == [[3, 1, r, r] for r in synthesis.noise_resolutions]
    with paddle.no_grad():
        images = synthesis(latent, noise).numpy()
        alone = synthesis(latent[1:2], synthesis.default_noise(1)).numpy()
        other_noise = synthesis(latent[1:2], [paddle.zeros_like(n[:1]) for n in noise]).numpy()
    assert images.shape == (3, 3, 32, 32)
    np.testing.assert_allclose(images[1:2], alone, atol=1e-5)
    assert np.abs(other_noise - alone).max() > 1e-3
    assert np.abs(images[0] - images[1]).max() > 1e-3


def test_every_style_row_reaches_the_image():
    paddle.seed(1)
    synthesis = MobileSynthesis(SMALL)
    latent = paddle.randn([1, synthesis.num_layers, 512])
    latent.stop_gradient = False
    synthesis(latent, synthesis.default_noise(1)).sum().backward()
    assert (np.abs(latent.grad.numpy()).sum(axis=2) > 0).all()


def test_inverse_haar_undoes_the_haar_analysis_of_an_image():
    rng = np.random.default_rng(0)
    image = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    x00, x01, x10, x11 = (
        image[..., 0::2, 0::2],
        image[..., 0::2, 1::2],
        image[..., 1::2, 0::2],
        image[..., 1::2, 1::2],
    )
    low = (x00 + x01 + x10 + x11) / 2
    rows = (x00 + x01 - x10 - x11) / 2
    cols = (x00 - x01 + x10 - x11) / 2
    diag = (x00 - x01 - x10 + x11) / 2
    high = np.stack([rows, cols, diag], axis=2).reshape(2, 9, 4, 4)  # channel c's bands at 3c .. 3c+2
    bands = paddle.to_tensor(np.concatenate([low, high], axis=1))
    np.testing.assert_allclose(inverse_haar(bands, haar_synthesis_kernel(3)).numpy(), image, atol=1e-6)


def plain_inverse_haar(x: paddle.Tensor) -> paddle.Tensor:
    """The inverse Haar transform as MobileStyleGAN writes it: ± sums of the bands, interleaved."""
    channels, size = x.shape[1] // 4, x.shape[2]
    low = x[:, :channels]
    high = x[:, channels:].reshape([0, channels, 3, size, size])
    b0, b1, b2 = high[:, :, 0], high[:, :, 1], high[:, :, 2]
    cells = [low + b0 + b1 + b2, low + b0 - b1 - b2, low - b0 + b1 - b2, low - b0 - b1 + b2]
    y = paddle.stack(cells, axis=2).reshape([0, channels, 2, 2, size, size]) * 0.5
    return y.transpose([0, 1, 4, 2, 5, 3]).reshape([0, channels, 2 * size, 2 * size])


def values_and_gradients(run, *arrays: np.ndarray) -> list[np.ndarray]:
    """``run``'s output on ``arrays`` and the gradients of a fixed random projection of it."""
    inputs = [paddle.to_tensor(a, stop_gradient=False) for a in arrays]
    y = run(*inputs)
    projection = np.random.default_rng(9).standard_normal(y.shape).astype(np.float32)
    (y * paddle.to_tensor(projection)).sum().backward()
    return [y.numpy()] + [t.grad.numpy() for t in inputs]


@pytest.mark.parametrize("batch", [1, 2])
def test_modulated_inverse_haar_equals_the_plain_transform_of_the_modulated_bands(batch):
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 12, 5, 5)).astype(np.float32)
    modulation = rng.standard_normal((batch, 12)).astype(np.float32)
    kernel = haar_synthesis_kernel(3)
    got = values_and_gradients(lambda x, m: inverse_haar(x, kernel, m), x, modulation)
    expected = values_and_gradients(lambda x, m: plain_inverse_haar(x * m.unsqueeze([2, 3])), x, modulation)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize(("out_channels", "groups", "kernel"), [(8, 8, 3), (6, 1, 1), (8, 2, 1)])
def test_modulated_conv_equals_the_conv_of_the_modulated_input(batch, out_channels, groups, kernel):
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 8, 6, 6)).astype(np.float32)
    weight = rng.standard_normal((out_channels, 8 // groups, kernel, kernel)).astype(np.float32)
    modulation = rng.standard_normal((batch, 8)).astype(np.float32)
    padding = kernel // 2

    def plain(x, w, m):
        return F.conv2d(x * m.unsqueeze([2, 3]), w, padding=padding, groups=groups)

    def folded(x, w, m):
        return modulated_conv(x, w, m, groups, padding)

    got = values_and_gradients(folded, x, weight, modulation)
    expected = values_and_gradients(plain, x, weight, modulation)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)


def test_shared_style_rows_pair_each_blocks_upsampling_with_its_first_conv():
    assert shared_style_rows(7) == [(1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (19, 20)]


IR_HEAD = '<?xml version="1.0"?>\n'
IR_BODY = """<net name="t" version="10"><layers>
<layer id="0" name="w" type="Const" version="opset1">
<data element_type="f32" shape="2, 2" offset="{offset}" size="{size}"/>
<output><port id="0" precision="FP32"><dim>2</dim><dim>2</dim></port></output></layer>
<layer id="1" name="out" type="Result" version="opset1">
<input><port id="0"><dim>2</dim><dim>2</dim></port></input></layer>
</layers><edges><edge from-layer="0" from-port="0" to-layer="1" to-port="0"/></edges></net>"""


def write_ir(folder: Path, offset: int = 0, size: int = 16, doctype: str = "") -> Path:
    xml = folder / "net.xml"
    xml.write_text(IR_HEAD + doctype + IR_BODY.format(offset=offset, size=size))
    np.arange(4, dtype="<f4").tofile(folder / "net.bin")
    return xml


def test_ir_constants_are_read_by_offset_size_type_and_shape(tmp_path):
    graph = read_ir(write_ir(tmp_path))
    np.testing.assert_array_equal(graph.constants[0], np.arange(4, dtype=np.float32).reshape(2, 2))
    assert [graph.layers[i].name for i in graph.order] == ["w", "out"]


@pytest.mark.parametrize(
    ("offset", "size", "doctype", "cause"),
    [
        (8, 16, "", "outside the file"),
        (0, 12, "", "claims 12 bytes"),
        (0, 16, '<!DOCTYPE net [<!ENTITY a "aaaa">]>\n', "refused XML"),
        (0, 16, '<!DOCTYPE net [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n', "refused XML"),
    ],
)
def test_ir_with_bad_constants_or_entities_is_refused_in_one_line(tmp_path, offset, size, doctype, cause):
    with pytest.raises(WeightsError) as error:
        read_ir(write_ir(tmp_path, offset, size, doctype))
    assert cause in str(error.value) and "\n" not in str(error.value)


@pytest.fixture(scope="module")
def networks(mobile_stylegan_cache_dir: Path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PULSE_CACHE_DIR", str(mobile_stylegan_cache_dir))
        return MOBILE_STYLEGAN_FFHQ.load_networks()


def test_mapping_matches_openvino_on_the_published_weights(networks, reference_dir):
    io = np.load(reference_dir / "mobile_stylegan_io.npz")
    with paddle.no_grad():
        style = networks[0](paddle.to_tensor(io["var"])).numpy()
    assert np.abs(style - io["style"]).max() <= 1e-4


def test_synthesis_with_the_published_noise_matches_openvino(networks, reference_dir):
    io = np.load(reference_dir / "mobile_stylegan_io.npz")
    synthesis = networks[1]
    latent = paddle.to_tensor(np.repeat(io["synth_style"][:, None], synthesis.num_layers, axis=1))
    with paddle.no_grad():
        image = synthesis(latent, synthesis.default_noise(1)).numpy()
    assert image.shape == (1, 3, 1024, 1024)
    assert np.abs(image - io["img"]).max() <= 5e-4


def small_generator() -> Generator:
    return MOBILE_STYLEGAN_FFHQ.build(channels=SMALL, resolution=32, seed=2)


@pytest.mark.parametrize(
    ("noise_batch", "compiled_ops"),
    [(2, "1"), (1, "1"), (2, "0")],  # one noise map per image; one for the batch (no compiled convs); none
)
def test_compiled_synthesis_trains_with_the_gradients_of_paddles_own_ops(
    monkeypatch, noise_batch: int, compiled_ops: str
):
    monkeypatch.setenv(library.ENV_SWITCH, compiled_ops)
    synthesis = small_generator().synthesis
    for parameter in synthesis.parameters():  # as a search has them: what oneDNN's backward is declared for
        parameter.stop_gradient = True
    latent_np = np.random.default_rng(3).standard_normal((2, synthesis.num_layers, 512)).astype(np.float32)
    noise_np = [noise.numpy() for noise in synthesis.default_noise(noise_batch)]

    def gradients(run) -> list[np.ndarray]:
        latent = paddle.to_tensor(latent_np, stop_gradient=False)
        noise = [paddle.to_tensor(n, stop_gradient=i >= 3) for i, n in enumerate(noise_np)]  # 3 trained
        image = run(latent, noise)
        (image * image).mean().backward()
        return [image.numpy(), latent.grad.numpy(), *[n.grad.numpy() for n in noise[:3]]]

    backward = MOBILE_STYLEGAN_FFHQ.capabilities.onednn_backward
    compiled = CompiledSynthesis(synthesis, onednn_backward=backward)  # oneDNN forward where available
    for _ in range(2):  # the first call traces, the second runs the built program
        got = gradients(compiled)
    monkeypatch.setenv(library.ENV_SWITCH, "0")  # the reference: Paddle's own ops, eager
    expected = gradients(synthesis)
    for name, a, b in zip(["image", "latent", "noise 0", "noise 1", "noise 2"], got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max(), err_msg=name)


def test_compiled_synthesis_gives_the_parameters_their_gradients_once_they_thaw():
    synthesis = small_generator().synthesis
    for parameter in synthesis.parameters():
        parameter.stop_gradient = True
    latent = paddle.to_tensor(np.random.default_rng(4).standard_normal((1, synthesis.num_layers, 512)))
    latent = latent.astype("float32")
    latent.stop_gradient = False
    noise = synthesis.default_noise(1)
    compiled = CompiledSynthesis(synthesis)
    compiled(latent, noise).mean().backward()  # traced frozen: no gradients for the epilogues' biases
    for parameter in synthesis.parameters():
        parameter.stop_gradient = False
    bias = synthesis.blocks[-1].conv2.bias

    def gradient(run) -> np.ndarray:
        bias.clear_gradient()
        run(latent, noise).mean().backward()
        return bias.grad.numpy()

    expected = gradient(synthesis)
    np.testing.assert_allclose(gradient(compiled), expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_small_network_exports_with_every_parity_check_passing(tmp_path):
    result = export_model(small_generator(), tmp_path / "msg", resolution_lr=8)
    assert result.checks and all(check.passed for check in result.checks)


def test_gaussian_fit_is_computed_once_and_then_read_from_the_cache(
    networks, mobile_stylegan_cache_dir, monkeypatch
):
    monkeypatch.setenv("PULSE_CACHE_DIR", str(mobile_stylegan_cache_dir))
    first = MOBILE_STYLEGAN_FFHQ.gaussian_fit(samples=2000)
    monkeypatch.setattr(mobile_stylegan, "_fit_mapping", lambda path: pytest.fail("fit recomputed"))
    again = MOBILE_STYLEGAN_FFHQ.gaussian_fit(samples=2000)
    np.testing.assert_array_equal(first.mean.numpy(), again.mean.numpy())
    # PULSE's map back, w = √2·leaky_relu(latent·std + mean, 0.2), gives mapping-like w for latent ~ N(0, I)
    latent = paddle.to_tensor(np.random.default_rng(4).standard_normal((2000, 512)).astype(np.float32))
    mapped = np.sqrt(2) * paddle.nn.functional.leaky_relu(latent * first.std + first.mean, 0.2).numpy()
    with paddle.no_grad():
        z = paddle.to_tensor(np.random.default_rng(5).standard_normal((2000, 512)).astype(np.float32))
        w = networks[0](z).numpy()
    np.testing.assert_allclose(mapped.mean(axis=0), w.mean(axis=0), atol=0.15)
    np.testing.assert_allclose(mapped.std(axis=0), w.std(axis=0), rtol=0.3)
    np.testing.assert_allclose(mapped.std(axis=0).mean(), w.std(axis=0).mean(), rtol=0.05)
