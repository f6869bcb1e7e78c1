"""PULSE's StyleGAN in Paddle: PULSE's state-dict names, and PULSE's numbers for PULSE's weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from pulse_cli.graphs.stylegan import GMapping, GSynthesis, adaptive_instance_norm, upscale_conv3x3
from pulse_cli.weights import load_state_dict, read_torch_checkpoint

SYNTHESIS_TOLERANCE = 5e-4  # max abs error, as the reference README gives for stylegan_small_io
MAPPING_TOLERANCE = 1e-4  # max abs error, as the reference README gives for mapping_io


@pytest.fixture(scope="module")
def small_config(reference_dir: Path) -> dict[str, Any]:
    return json.loads((reference_dir / "stylegan_small.json").read_text())


@pytest.fixture(scope="module")
def small_io(reference_dir: Path) -> dict[str, np.ndarray]:
    with np.load(reference_dir / "stylegan_small_io.npz") as archive:
        return dict(archive)


def small_synthesis(reference_dir: Path, config: dict[str, Any]) -> GSynthesis:
    """The small synthesis network with the weights of ``stylegan_small.pt``, frozen."""
    path = reference_dir / "stylegan_small.pt"
    synthesis = GSynthesis(**config["config"])
    load_state_dict(synthesis, read_torch_checkpoint(path), path)
    for parameter in synthesis.parameters():
        parameter.stop_gradient = True
    return synthesis


def noise_maps(io: dict[str, np.ndarray], count: int, trainable: bool = False) -> list[paddle.Tensor]:
    return [paddle.to_tensor(io[f"noise_{i}"], stop_gradient=not trainable) for i in range(count)]


def test_small_synthesis_reproduces_pulse_output(
    reference_dir: Path, small_config: dict[str, Any], small_io: dict[str, np.ndarray]
) -> None:
    synthesis = small_synthesis(reference_dir, small_config)
    assert synthesis.num_layers == small_config["num_layers"]
    assert synthesis.noise_resolutions == tuple(
        small_io[f"noise_{i}"].shape[-1] for i in range(synthesis.num_layers)
    )
    with paddle.no_grad():
        output = synthesis(
            paddle.to_tensor(small_io["dlatents"]), noise_maps(small_io, synthesis.num_layers)
        ).numpy()
    assert output.shape == small_io["output"].shape
    assert np.abs(output - small_io["output"]).max() < SYNTHESIS_TOLERANCE


def test_legacy_checkpoint_holds_the_same_weights(reference_dir: Path) -> None:
    current = read_torch_checkpoint(reference_dir / "stylegan_small.pt")
    legacy = read_torch_checkpoint(reference_dir / "stylegan_small_legacy.pt")
    assert list(legacy) == list(current)
    for name, array in current.items():
        assert legacy[name].dtype == array.dtype, name
        np.testing.assert_array_equal(legacy[name], array, err_msg=name)
    synthesis = GSynthesis(**json.loads((reference_dir / "stylegan_small.json").read_text())["config"])
    load_state_dict(synthesis, legacy, reference_dir / "stylegan_small_legacy.pt")


def test_mapping_reproduces_pulse_output(reference_dir: Path) -> None:
    path = reference_dir / "mapping.pt"
    mapping = GMapping()
    load_state_dict(mapping, read_torch_checkpoint(path), path)
    with np.load(reference_dir / "mapping_io.npz") as io:
        with paddle.no_grad():
            w = mapping(paddle.to_tensor(io["z"])).numpy()
        assert w.shape == io["w"].shape
        assert np.abs(w - io["w"]).max() < MAPPING_TOLERANCE


def test_state_dicts_have_pulses_names_and_shapes(reference_dir: Path) -> None:
    expected = json.loads((reference_dir / "stylegan_1024_keys.json").read_text())
    for layer, name in ((GSynthesis(), "synthesis_1024"), (GMapping(), "mapping")):
        assert {key: list(value.shape) for key, value in layer.state_dict().items()} == expected[name]


def test_to_static_gives_dygraphs_output_and_gradients(
    reference_dir: Path, small_config: dict[str, Any], small_io: dict[str, np.ndarray]
) -> None:
    """The static backend trains the dlatents and noise through a to_static copy of the network."""
    projection = paddle.to_tensor(
        np.random.default_rng(0).standard_normal(small_io["output"].shape), "float32"
    )

    def output_and_gradients(synthesis: paddle.nn.Layer) -> list[np.ndarray]:
        dlatents = paddle.to_tensor(small_io["dlatents"], stop_gradient=False)
        noise = noise_maps(small_io, small_config["num_layers"], trainable=True)
        output = synthesis(dlatents, noise)
        (output * projection).sum().backward()
        return [output.numpy(), dlatents.grad.numpy()] + [n.grad.numpy() for n in noise]

    dygraph = output_and_gradients(small_synthesis(reference_dir, small_config))
    static = output_and_gradients(paddle.jit.to_static(small_synthesis(reference_dir, small_config)))
    assert all(np.abs(d).max() > 0 for d in dygraph), "every input should reach the output"
    for expected, actual in zip(dygraph, static, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_transposed_conv_upscale_equals_pulses_conv_transpose() -> None:
    """PULSE's fused upscale (transposed conv with the 2x2-summed kernel) as nearest x2 and a flipped conv."""
    rng = np.random.default_rng(1)
    x = paddle.to_tensor(rng.standard_normal((2, 5, 6, 6)), "float32")
    weight = paddle.to_tensor(rng.standard_normal((7, 5, 3, 3)), "float32")
    summed = F.pad(weight.transpose([1, 0, 2, 3]), [1, 1, 1, 1])
    summed = summed[:, :, 1:, 1:] + summed[:, :, :-1, 1:] + summed[:, :, 1:, :-1] + summed[:, :, :-1, :-1]
    expected = F.conv2d_transpose(x, summed, stride=2, padding=1).numpy()
    actual = upscale_conv3x3(x, paddle.flip(weight, axis=[2, 3])).numpy()
    assert actual.shape == (2, 7, 12, 12)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


def test_synthesis_refuses_a_wrong_noise_count_and_resolution(
    reference_dir: Path, small_config: dict[str, Any], small_io: dict[str, np.ndarray]
) -> None:
    synthesis = small_synthesis(reference_dir, small_config)
    layers = small_config["num_layers"]
    with pytest.raises(ValueError, match=f"takes {layers} noise maps, got {layers - 1}"):
        synthesis(paddle.to_tensor(small_io["dlatents"]), noise_maps(small_io, layers - 1))
    with pytest.raises(ValueError, match="power of two"):
        GSynthesis(resolution=96)


def test_adaptive_instance_norm_normalizes_each_plane_then_scales_and_shifts_each_channel() -> None:
    """Folded into one instance norm for a known batch, broadcast in a graph built for any batch."""
    rng = np.random.default_rng(2)
    x, scale, shift = (
        rng.standard_normal(shape, dtype=np.float32) for shape in ((3, 4, 5, 5), (3, 4), (3, 4))
    )
    mean = x.mean(axis=(2, 3), keepdims=True)
    normalized = (x - mean) / np.sqrt(x.var(axis=(2, 3), keepdims=True) + 1e-5)
    expected = normalized * scale[:, :, None, None] + shift[:, :, None, None]
    tensors = [paddle.to_tensor(a) for a in (x, scale, shift)]
    np.testing.assert_allclose(adaptive_instance_norm(*tensors).numpy(), expected, rtol=0, atol=1e-5)
    spec = [paddle.static.InputSpec([None, *a.shape[1:]], "float32") for a in (x, scale, shift)]
    any_batch = paddle.jit.to_static(adaptive_instance_norm, input_spec=spec, full_graph=True)
    np.testing.assert_allclose(any_batch(*tensors).numpy(), expected, rtol=0, atol=1e-5)
