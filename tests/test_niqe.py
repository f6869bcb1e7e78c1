"""NIQE in NumPy: both variants against their fixtures, the pristine model, inputs and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat

from pulse_cli.niqe import NiqeError, niqe
from pulse_cli.niqe.features import band_moments, block_features, nearest_index
from pulse_cli.niqe.luma import to_luma
from pulse_cli.niqe.score import pristine
from pulse_cli.niqe.variants import (
    MATLAB,
    PADDLE_PULSE,
    SHIFTS,
    alpha_grid,
    gaussian_taps,
    imresize_half_taps,
)

VARIANT_KEYS = {"matlab": "matlab_y", "paddle-pulse": "paddle_pulse_variant_gray"}
TOLERANCE = {"matlab": 1e-3, "paddle-pulse": 2e-3}  # the agreement per variant


def reference_scores(reference_dir):
    return json.loads((reference_dir / "niqe_reference.json").read_text())


def fixture_cases(reference_dir):
    scores = reference_scores(reference_dir)
    return [
        (variant, name, value) for variant, key in VARIANT_KEYS.items() for name, value in scores[key].items()
    ]


def test_shipped_pristine_model_is_the_matlab_release(reference_dir):
    release = loadmat(reference_dir / "niqe_modelparameters.mat")
    mu, cov = pristine()
    np.testing.assert_array_equal(mu, release["mu_prisparam"].ravel())
    np.testing.assert_array_equal(cov, release["cov_prisparam"])


def test_both_variants_match_their_fixtures_on_every_image(reference_dir):
    for variant, name, expected in fixture_cases(reference_dir):
        value = niqe(reference_dir / "images" / name, variant=variant)
        assert abs(value - expected) <= TOLERANCE[variant], (variant, name, value, expected)


def test_path_pil_image_and_arrays_give_the_same_score(reference_dir):
    path = reference_dir / "images" / "coffee_500x333.png"
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
        from_pil = niqe(image)
    from_path = niqe(path)
    assert from_pil == from_path
    assert niqe(rgb) == from_path
    assert niqe(rgb.astype(np.float64)) == from_path


def test_a_gray_array_is_taken_as_the_luma_and_a_gray_file_as_rgb(reference_dir):
    path = reference_dir / "images" / "camera_gray_512.png"
    gray = np.asarray(Image.open(path))
    assert gray.ndim == 2
    ycbcr_of_gray = np.round(16 + gray.astype(np.float64) * (65.481 + 128.553 + 24.966) / 255)
    assert niqe(path) == niqe(ycbcr_of_gray) == niqe(np.stack([gray] * 3, axis=-1))
    assert niqe(gray) != pytest.approx(niqe(path), abs=1e-3)


def test_ycbcr_luma_is_matlab_rgb2ycbcr_rounded_halves_to_even():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rgb[0, 0] = (220, 208, 216)  # Y = 198.5 exactly
    exact = 16 + (rgb.astype(np.float64) @ [65.481, 128.553, 24.966]) / 255
    np.testing.assert_array_equal(to_luma(rgb, MATLAB), np.round(exact))
    assert to_luma(rgb, MATLAB)[0, 0] == 198


def test_pil_luma_is_pil_convert_l():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(to_luma(rgb, PADDLE_PULSE), expected)


def test_window_and_resize_taps_are_matlab_s():
    taps = gaussian_taps()
    x = np.arange(-3, 4)
    fspecial = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * (7 / 6) ** 2))
    np.testing.assert_allclose(np.outer(taps, taps), fspecial / fspecial.sum(), atol=1e-16)
    resize = imresize_half_taps()
    assert resize.shape == (8,)
    assert resize.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(resize[:4], [-0.01171875, -0.03515625, 0.11328125, 0.43359375])


def test_alpha_grids_end_where_each_variant_says():
    assert len(alpha_grid(MATLAB.alpha_max).alpha) == 9801
    assert alpha_grid(MATLAB.alpha_max).alpha[-1] == pytest.approx(10.0)
    assert len(alpha_grid(PADDLE_PULSE.alpha_max).alpha) == 9800
    assert alpha_grid(PADDLE_PULSE.alpha_max).alpha[-1] == pytest.approx(9.999)
    assert np.all(np.diff(alpha_grid(MATLAB.alpha_max).rho) > 0)


def test_nearest_index_is_the_argmin_of_squared_distance():
    table = alpha_grid(MATLAB.alpha_max).rho
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.uniform(0, 0.8, 2000), table[::97], (table[1:] + table[:-1])[::89] / 2])
    expected = np.argmin((table[None, :] - values[:, None]) ** 2, axis=1)
    np.testing.assert_array_equal(nearest_index(table, values), expected)
    np.testing.assert_array_equal(nearest_index(table, np.array([np.nan, np.inf, -np.inf])), [0, 0, 0])


def test_paddle_pulse_repeats_beta_l_for_the_diagonal_shifts(reference_dir):
    rgb = np.asarray(Image.open(reference_dir / "images" / "coffee_500x333.png").convert("RGB"))[:288, :480]
    seed = block_features(to_luma(rgb, PADDLE_PULSE).copy(), PADDLE_PULSE)
    standard = block_features(to_luma(rgb, MATLAB).copy(), MATLAB)
    for scale in (0, 18):
        for left, right in ((12, 13), (16, 17)):
            np.testing.assert_array_equal(seed[:, scale + right], seed[:, scale + left])
            assert np.all(standard[:, scale + right] != standard[:, scale + left])


def test_block_moments_are_those_of_circular_shifts_within_each_block():
    rng = np.random.default_rng(3)
    mscn = rng.standard_normal((96, 192)).astype(np.float32)
    before = band_moments(mscn, 96, MATLAB).copy()
    block = mscn[:, :96].astype(np.float64)
    for i, shift in enumerate(SHIFTS, start=1):
        product = block * np.roll(block, shift, axis=(0, 1))
        assert before[0, i, 1] == np.count_nonzero(product < 0)
        assert before[0, i, 4] == pytest.approx(np.sum(product**2), rel=1e-6)
        assert before[0, i, 5] == pytest.approx(np.sum(np.abs(product)), rel=1e-6)
    mscn[:, 96:] = rng.standard_normal((96, 96))
    after = band_moments(mscn, 96, MATLAB)
    np.testing.assert_array_equal(after[0], before[0])
    assert not np.array_equal(after[1], before[1])


def test_too_small_images_are_refused_with_the_reason():
    rng = np.random.default_rng(4)
    with pytest.raises(NiqeError, match=r"array 128x128x3: 128x128 px holds 1 whole 96x96 block"):
        niqe(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    assert np.isfinite(niqe(rng.integers(0, 256, (100, 200, 3), dtype=np.uint8)))


def test_flat_images_are_refused_not_scored_nan():
    with pytest.raises(NiqeError, match="too flat"):
        niqe(np.full((192, 192), 128, np.uint8))


def test_unreadable_and_missing_files_are_refused_naming_the_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(NiqeError, match=f"{bad}: not an image file"):
        niqe(bad)
    with pytest.raises(NiqeError, match="no such file"):
        niqe(tmp_path / "missing.png")
    with pytest.raises(NiqeError, match="expected an HxW or HxWx3 array"):
        niqe(np.zeros((200, 200, 4), np.uint8))


def test_unknown_variant_or_backend_is_a_value_error():
    image = np.zeros((192, 192), np.uint8)
    with pytest.raises(ValueError, match="unknown NIQE variant"):
        niqe(image, variant="nope")
    with pytest.raises(ValueError, match="unknown NIQE backend"):
        niqe(image, backend="nope")
