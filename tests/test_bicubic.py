"""PULSE's bicubic downscaler in Paddle: reference numbers, any factor, gradients in dygraph and static."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from pulse_cli.graphs.bicubic import BicubicDownsample, bicubic_kernel, downscale_array, downscale_images

REFERENCE_CASES = [("x64", 2), ("x64", 4), ("x64", 8), ("x256", 4), ("x256", 16)]


@pytest.mark.parametrize(("source", "factor"), REFERENCE_CASES)
def test_matches_pulse_bicubic_downsample(reference_dir, source, factor):
    io = np.load(reference_dir / "bicubic_io.npz")
    out = BicubicDownsample(factor)(paddle.to_tensor(io[source])).numpy()
    expected = io[f"{source}_d{factor}"]
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("factor", [1, 3, 5])
def test_kernel_has_four_factor_taps_summing_to_one_and_is_symmetric(factor):
    kernel = bicubic_kernel(factor)
    assert kernel.shape == (4 * factor,)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(kernel, kernel[::-1], atol=1e-7)


@pytest.mark.parametrize(("channels", "factor"), [(1, 3), (5, 2)])
def test_any_factor_and_channel_count_keeps_a_constant_image_constant(channels, factor):
    image = paddle.full([2, channels, 6 * factor, 6 * factor], 0.25)
    out = BicubicDownsample(factor)(image)
    assert out.shape == [2, channels, 6, 6]
    np.testing.assert_allclose(out.numpy(), 0.25, atol=1e-6)


def test_each_channel_is_downscaled_on_its_own():
    rng = np.random.default_rng(0)
    image = rng.random((1, 3, 32, 32), dtype=np.float32)
    down = BicubicDownsample(4)
    whole = down(paddle.to_tensor(image)).numpy()
    for c in range(3):
        alone = down(paddle.to_tensor(image[:, c : c + 1])).numpy()
        np.testing.assert_allclose(whole[:, c : c + 1], alone, atol=1e-7)


@pytest.mark.parametrize("factor", [0, 2.5, -4])
def test_rejects_a_factor_that_is_not_a_positive_integer(factor):
    with pytest.raises(ValueError, match="positive integer"):
        BicubicDownsample(factor)


def test_to_static_gives_the_same_values_and_gradients_as_dygraph():
    rng = np.random.default_rng(1)
    image = paddle.to_tensor(rng.random((2, 3, 32, 32), dtype=np.float32), stop_gradient=False)
    results = []
    for layer in (BicubicDownsample(4), paddle.jit.to_static(BicubicDownsample(4), full_graph=True)):
        out = layer(image)
        (out**2).sum().backward()
        results.append((out.numpy(), image.grad.numpy().copy()))
        image.clear_grad()
    (dy_out, dy_grad), (st_out, st_grad) = results
    np.testing.assert_allclose(st_out, dy_out, atol=1e-6)
    np.testing.assert_allclose(st_grad, dy_grad, atol=1e-6)
    assert np.abs(dy_grad).max() > 0


def test_an_image_side_within_the_reflect_padding_is_refused_naming_the_side():
    """PULSE pads by 3 * factor with reflection, which needs a longer side than the padding."""
    with pytest.raises(ValueError, match="side of 12 px is too small for a x8 downscale"):
        BicubicDownsample(8)(paddle.zeros([1, 3, 12, 12]))
    assert BicubicDownsample(8)(paddle.zeros([1, 3, 16, 16])).shape == [1, 3, 2, 2]


def test_the_numpy_downscale_is_the_layers_and_the_pictures_are_it_clipped():
    images = np.random.default_rng(3).random((2, 3, 128, 128)).astype(np.float32)
    layer = BicubicDownsample(8)(paddle.to_tensor(images)).numpy()
    np.testing.assert_allclose(downscale_array(images, 8), layer, atol=1e-6)
    pictures = downscale_images(images, 8)
    assert pictures.dtype == np.float32
    np.testing.assert_allclose(pictures, np.clip(layer, 0, 1), atol=1e-6)
