"""PULSE's gaussian fit: loading it in every format, computing it as PULSE does, caching it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import paddle
import pytest

from pulse_cli.cache import cache_dir, sha256_file
from pulse_cli.models.gaussian_fit import (
    cached_gaussian_fit,
    fit_gaussian,
    load_gaussian_fit,
    load_stylegan_mapping,
)
from pulse_cli.weights import WeightsError, read_torch_checkpoint, save_pdparams

DIM = 512


def stand_in_mapping(seed: int = 1) -> paddle.nn.Layer:
    """A small mapping network whose outputs are negative often enough to exercise LeakyReLU(5)."""
    paddle.seed(seed)
    nn = paddle.nn
    mapping = nn.Sequential(nn.Linear(DIM, DIM), nn.LeakyReLU(0.2), nn.Linear(DIM, DIM))
    mapping.eval()
    return mapping


def test_fit_is_the_mean_and_unbiased_std_of_leaky_relu_5_of_the_mapped_samples() -> None:
    mapping = stand_in_mapping()
    samples, seed = 3000, 4
    z = np.random.default_rng(seed).standard_normal((samples, DIM), dtype=np.float32)
    w = mapping(paddle.to_tensor(z)).numpy().astype(np.float64)
    assert (w < 0).any() and (w > 0).any()
    w = np.where(w >= 0, w, 5 * w)
    fit = fit_gaussian(mapping, samples=samples, seed=seed, chunk=700)
    assert fit.mean.shape == [DIM] and fit.std.shape == [DIM] and fit.mean.dtype == paddle.float32
    np.testing.assert_allclose(fit.mean.numpy(), w.mean(axis=0), rtol=0, atol=1e-5)
    np.testing.assert_allclose(fit.std.numpy(), w.std(axis=0, ddof=1), rtol=1e-5, atol=1e-6)


def test_chunk_size_does_not_change_the_fit() -> None:
    mapping = stand_in_mapping()
    fits = [fit_gaussian(mapping, samples=2000, seed=0, chunk=chunk) for chunk in (2000, 512, 7)]
    for fit in fits[1:]:
        np.testing.assert_allclose(fit.mean.numpy(), fits[0].mean.numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(fit.std.numpy(), fits[0].std.numpy(), rtol=1e-6, atol=0)


def test_the_seed_picks_the_samples() -> None:
    mapping = stand_in_mapping()
    same = [fit_gaussian(mapping, samples=500, seed=3, chunk=100) for _ in range(2)]
    other = fit_gaussian(mapping, samples=500, seed=4, chunk=100)
    np.testing.assert_array_equal(same[0].mean.numpy(), same[1].mean.numpy())
    assert not np.allclose(other.mean.numpy(), same[0].mean.numpy())


def test_cached_fit_is_computed_once_per_mapping_file(tmp_path: Path, empty_cache: Path) -> None:
    weights = tmp_path / "mapping.pt"
    weights.write_bytes(b"stand-in mapping weights")
    loads: list[Path] = []

    def load_mapping(path: Path) -> paddle.nn.Layer:
        loads.append(path)
        return stand_in_mapping()

    first = cached_gaussian_fit(weights, samples=400, chunk=150, load_mapping=load_mapping)
    again = cached_gaussian_fit(weights, samples=400, chunk=150, load_mapping=load_mapping)
    assert loads == [weights]
    np.testing.assert_array_equal(again.mean.numpy(), first.mean.numpy())
    np.testing.assert_array_equal(again.std.numpy(), first.std.numpy())
    entries = list((empty_cache / "gaussian_fit").iterdir())
    assert [entry.name.split("-")[0] for entry in entries] == [sha256_file(weights)]
    direct = fit_gaussian(stand_in_mapping(), samples=400, seed=0, chunk=150)
    np.testing.assert_array_equal(first.mean.numpy(), direct.mean.numpy())

    weights.write_bytes(b"other mapping weights")  # a new file is a new key
    cached_gaussian_fit(weights, samples=400, chunk=150, load_mapping=load_mapping)
    assert len(loads) == 2
    cached_gaussian_fit(weights, samples=300, chunk=150, load_mapping=load_mapping)
    assert len(loads) == 3  # so is another sample count


def test_damaged_cache_entry_is_recomputed(tmp_path: Path, empty_cache: Path) -> None:
    weights = tmp_path / "mapping.pt"
    weights.write_bytes(b"weights")
    first = cached_gaussian_fit(weights, samples=200, chunk=100, load_mapping=lambda _: stand_in_mapping())
    (entry,) = (empty_cache / "gaussian_fit").iterdir()
    entry.write_bytes(b"garbage")
    again = cached_gaussian_fit(weights, samples=200, chunk=100, load_mapping=lambda _: stand_in_mapping())
    np.testing.assert_array_equal(again.mean.numpy(), first.mean.numpy())
    assert load_gaussian_fit(entry).mean.shape == [DIM]


def test_default_loader_builds_the_stylegan_mapping_from_pulse_weights(
    reference_dir: Path, empty_cache: Path
) -> None:
    io_ = np.load(reference_dir / "mapping_io.npz")
    mapping = load_stylegan_mapping(reference_dir / "mapping.pt")
    w = mapping(paddle.to_tensor(io_["z"])).numpy()
    np.testing.assert_allclose(w, io_["w"], rtol=0, atol=1e-4)
    fit = cached_gaussian_fit(reference_dir / "mapping.pt", samples=64, chunk=32)
    expected = fit_gaussian(mapping, samples=64, seed=0, chunk=64)
    np.testing.assert_allclose(fit.mean.numpy(), expected.mean.numpy(), rtol=0, atol=1e-5)


def test_pulse_gaussian_fit_file_loads_as_float32_vectors(reference_dir: Path) -> None:
    path = reference_dir / "gaussian_fit.pt"
    fit = load_gaussian_fit(path)
    raw = read_torch_checkpoint(path)
    assert fit.mean.shape == [DIM] and fit.std.shape == [DIM] and fit.std.dtype == paddle.float32
    np.testing.assert_array_equal(fit.mean.numpy(), raw["mean"])
    np.testing.assert_array_equal(fit.std.numpy(), raw["std"])


def test_fit_loads_from_npz_and_pdparams(tmp_path: Path) -> None:
    mean = np.linspace(-1, 1, DIM, dtype=np.float32)
    std = np.linspace(0.1, 2, DIM, dtype=np.float64)
    np.savez(tmp_path / "fit.npz", mean=mean, std=std)
    save_pdparams({"mean": mean, "std": std}, tmp_path / "fit.pdparams")
    for name in ("fit.npz", "fit.pdparams"):
        fit = load_gaussian_fit(tmp_path / name)
        np.testing.assert_array_equal(fit.mean.numpy(), mean)
        np.testing.assert_allclose(fit.std.numpy(), std, rtol=1e-7)
        assert fit.std.dtype == paddle.float32


def test_files_that_are_not_a_fit_are_refused_naming_the_file(tmp_path: Path) -> None:
    np.savez(tmp_path / "weights.npz", weight=np.ones(3, np.float32))
    with pytest.raises(WeightsError, match=r"weights\.npz: not a gaussian fit \(no 'mean'; found weight\)"):
        load_gaussian_fit(tmp_path / "weights.npz")
    np.savez(tmp_path / "odd.npz", mean=np.ones(3, np.float32), std=np.ones(4, np.float32))
    with pytest.raises(WeightsError, match=r"odd\.npz: gaussian fit mean and std must be float vectors"):
        load_gaussian_fit(tmp_path / "odd.npz")
    (tmp_path / "fit.txt").write_text("mean std")
    with pytest.raises(WeightsError, match=r"fit\.txt: not a weights file"):
        load_gaussian_fit(tmp_path / "fit.txt")


def test_cache_dir_honours_pulse_cache_dir_then_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_CACHE_DIR", str(tmp_path / "pulse"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "pulse" and cache_dir().is_dir()
    monkeypatch.delenv("PULSE_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "pulse-cli" and cache_dir().is_dir()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "pulse-cli" and cache_dir().is_dir()


def test_sha256_file_hashes_the_bytes(tmp_path: Path) -> None:
    import hashlib

    data = bytes(range(256)) * 5000  # spans several read chunks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
