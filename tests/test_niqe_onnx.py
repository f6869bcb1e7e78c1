"""NIQE's ONNX backend: the Paddle graph, exported once per session into a temporary cache, agrees
with the NumPy backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pulse_cli.niqe import niqe, onnx_backend
from pulse_cli.niqe.variants import MATLAB, PADDLE_PULSE

pytest.importorskip("onnxruntime")
pytest.importorskip("paddle2onnx")

AGREEMENT = 1e-4  # the issue's: same values as numpy within 1e-4
SMALL_IMAGES = ("astronaut_512.png", "camera_gray_512.png", "coffee_500x333.png")


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory):
    """A fresh cache folder for the exported graphs, shared by this module's tests."""
    folder = tmp_path_factory.mktemp("pulse-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PULSE_CACHE_DIR", str(folder))
        onnx_backend.session.cache_clear()
        yield folder
        onnx_backend.session.cache_clear()


def test_onnx_matches_numpy_on_the_fixture_images_for_both_variants(reference_dir, onnx_cache):
    for variant in ("matlab", "paddle-pulse"):
        for name in SMALL_IMAGES:
            path = reference_dir / "images" / name
            assert niqe(path, variant, "onnx") == pytest.approx(niqe(path, variant, "numpy"), abs=AGREEMENT)


def test_onnx_features_equal_numpy_features(reference_dir, onnx_cache):
    from pulse_cli.niqe.features import block_features
    from pulse_cli.niqe.luma import to_luma

    rgb = np.asarray(Image.open(reference_dir / "images" / "astronaut_512.png").convert("RGB"))[:480, :480]
    for variant in (MATLAB, PADDLE_PULSE):
        expected = block_features(to_luma(rgb, variant), variant)
        features = onnx_backend.onnx_block_features(rgb, variant)
        assert features.shape == expected.shape == (25, 36)
        np.testing.assert_array_equal(np.isnan(features), np.isnan(expected))
        np.testing.assert_allclose(features, expected, rtol=1e-6, atol=1e-9)


def test_onnx_takes_a_gray_array_as_the_luma(reference_dir, onnx_cache):
    gray = np.asarray(Image.open(reference_dir / "images" / "camera_gray_512.png"))
    assert gray.ndim == 2
    assert niqe(gray, "matlab", "onnx") == pytest.approx(niqe(gray, "matlab", "numpy"), abs=AGREEMENT)


def test_the_exported_graph_is_cached_per_variant_and_reused(reference_dir, onnx_cache, monkeypatch):
    niqe(reference_dir / "images" / "coffee_500x333.png", "matlab", "onnx")
    cached = sorted(p.name for p in (onnx_cache / "niqe").glob("*.onnx"))
    assert any(name.startswith("niqe-matlab-3ch-v") for name in cached)
    onnx_backend.session.cache_clear()

    def no_export(*args):
        raise AssertionError("the cached graph should have been reused")

    monkeypatch.setattr(onnx_backend, "export_graph", no_export)
    assert np.isfinite(niqe(reference_dir / "images" / "coffee_500x333.png", "matlab", "onnx"))


def test_onnx_matches_the_fixtures_too(reference_dir, onnx_cache):
    scores = json.loads((reference_dir / "niqe_reference.json").read_text())
    for variant, key, tolerance in (
        ("matlab", "matlab_y", 1e-3),
        ("paddle-pulse", "paddle_pulse_variant_gray", 2e-3),
    ):
        for name in SMALL_IMAGES:
            value = niqe(reference_dir / "images" / name, variant, "onnx")
            assert abs(value - scores[key][name]) <= tolerance, (variant, name, value)
