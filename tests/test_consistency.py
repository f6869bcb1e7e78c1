"""Consistency with the input: the lower band of an image's residual against its input put back, the
part of the image the downscale does not see left as it was."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from pulse_cli.consistency import consistent, right_inverse
from pulse_cli.graphs.bicubic import downscale_array, downscale_matrix

SIDE, SMALL = 128, 16


def _smooth(seed: int, side: int, low: float, high: float) -> np.ndarray:
    """A [1, 3, side, side] image of smooth random structure with values in [low, high]."""
    noise = np.random.default_rng(seed).standard_normal((1, 3, side, side))
    field = gaussian_filter(noise, (0, 0, side / 32, side / 32))
    field = (field - field.min()) / (field.max() - field.min())
    return (low + (high - low) * field).astype(np.float32)


@pytest.fixture()
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A generated image and another image's downscale as its input, far from consistent."""
    image = _smooth(1, SIDE, 0.3, 0.7)
    ref = downscale_array(_smooth(2, SIDE, 0.35, 0.65), SIDE // SMALL).astype(np.float32)
    return image, ref


def test_the_right_inverse_is_undone_by_the_downscale():
    product = downscale_matrix(SIDE, 8).astype(np.float64) @ right_inverse(SIDE, 8)
    np.testing.assert_allclose(product, np.eye(SIDE // 8), atol=1e-9)


def test_an_image_made_consistent_downscales_to_its_input_in_the_lower_band(pair):
    image, ref = pair
    before = ref - downscale_array(image, 8)
    after = ref - downscale_array(consistent(image, ref, sigma=0.75), 8)
    band = (0, 0, 0.75, 0.75)
    assert (gaussian_filter(after, band) ** 2).mean() < 0.01 * (gaussian_filter(before, band) ** 2).mean()
    assert (after**2).mean() < 0.05 * (before**2).mean()  # what is left is the finest band's


def test_only_what_the_downscale_sees_is_changed(pair):
    image, ref = pair  # values well inside [0, 1]: nothing is clipped
    change = consistent(image, ref, sigma=0.75).astype(np.float64) - image
    inverse = right_inverse(SIDE, 8)
    in_range = inverse @ downscale_array(change, 8) @ inverse.T  # the change's part the downscale sees
    np.testing.assert_allclose(in_range, change, atol=1e-5)
    assert np.abs(change).max() > 0.05


def test_a_consistent_image_stays_within_0_and_1():
    image = _smooth(3, SIDE, 0.0, 1.0)
    ref = downscale_array(_smooth(4, SIDE, 0.0, 1.0), 8).astype(np.float32)
    out = consistent(image, ref, sigma=0.75)
    assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0


def test_a_reference_that_does_not_divide_the_image_is_refused(pair):
    image, _ = pair
    with pytest.raises(ValueError, match="does not downscale to 24 px"):
        consistent(image, np.zeros((1, 3, 24, 24), np.float32), sigma=0.75)
