"""PULSE's gaussian fit of the mapping network's output: loading it, computing it, caching it.

PULSE maps the searched latent to StyleGAN's W space with the per-dimension mean and std of
``LeakyReLU(5)(mapping(z))`` over a million ``z ~ N(0, I)``; its release ships that fit as
``gaussian_fit.pt``. Without the file the fit is computed from the mapping network and cached.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import paddle

from pulse_cli.atomic import atomic_write
from pulse_cli.cache import cache_dir, sha256_file
from pulse_cli.graphs.generator import GaussianFit, GaussianLatentMap
from pulse_cli.graphs.stylegan import GMapping
from pulse_cli.weights import WeightsError, load_state_dict, read_weights

LATENT_DIM = 512


def _fit_from_arrays(mean: np.ndarray, std: np.ndarray) -> GaussianFit:
    return GaussianFit(
        mean=paddle.to_tensor(np.asarray(mean, dtype=np.float32)),
        std=paddle.to_tensor(np.asarray(std, dtype=np.float32)),
    )


def load_gaussian_fit(path: str | Path) -> GaussianFit:
    """A saved fit holding ``mean`` and ``std``: PULSE's ``.pt``, a ``.pdparams`` or an ``.npz``."""
    state = read_weights(path)
    for name in ("mean", "std"):
        if name not in state:
            found = ", ".join(state) or "nothing"
            raise WeightsError(f"{path}: not a gaussian fit (no {name!r}; found {found})")
    mean, std = (state[name].reshape(-1) for name in ("mean", "std"))
    if mean.shape != std.shape or mean.dtype.kind != "f" or std.dtype.kind != "f":
        raise WeightsError(
            f"{path}: gaussian fit mean and std must be float vectors of one size, "
            f"found {list(state['mean'].shape)} {state['mean'].dtype} and {list(state['std'].shape)} "
            f"{state['std'].dtype}"
        )
    return _fit_from_arrays(mean, std)


def fit_gaussian(
    mapping: paddle.nn.Layer,
    samples: int = 1_000_000,
    seed: int = 0,
    chunk: int = 10_000,
    latent_dim: int = LATENT_DIM,
    gain: float = 1.0,
) -> GaussianFit:
    """Per-dimension mean and unbiased std of ``LeakyReLU(5)(mapping(z) / gain)`` over ``samples``
    seeded ``z ~ N(0, I)``, as PULSE fits it (``GaussianLatentMap.gaussianize``; ``gain`` is that
    of the map the fit is for: 1 for StyleGAN 1, √2 for a mapping ending in ``√2 · leaky_relu``).

    The samples are drawn in chunks from one seeded stream, so the chunk size changes neither the
    samples nor (beyond float64 rounding) the fit; chunk statistics are merged in float64 with
    Chan's parallel update, so memory stays flat whatever the sample count.
    """
    if samples < 2 or chunk < 1:
        raise ValueError(f"a gaussian fit needs 2+ samples and a positive chunk, got {samples} and {chunk}")
    rng = np.random.default_rng(seed)
    count = 0
    mean = np.zeros(latent_dim, dtype=np.float64)
    m2 = np.zeros(latent_dim, dtype=np.float64)  # sum of squared deviations from the mean
    with paddle.no_grad():
        for start in range(0, samples, chunk):
            z = rng.standard_normal((min(chunk, samples - start), latent_dim), dtype=np.float32)
            w = mapping(paddle.to_tensor(z)).numpy().astype(np.float64)
            w = GaussianLatentMap.gaussianize(w, gain=gain)
            n = w.shape[0]
            chunk_mean = w.mean(axis=0)
            chunk_m2 = ((w - chunk_mean) ** 2).sum(axis=0)
            delta = chunk_mean - mean
            total = count + n
            mean += delta * (n / total)
            m2 += chunk_m2 + delta**2 * (count * n / total)
            count = total
    return _fit_from_arrays(mean, np.sqrt(m2 / (count - 1)))


def load_stylegan_mapping(path: Path) -> paddle.nn.Layer:
    """PULSE's StyleGAN mapping network with the weights in ``path``."""
    mapping = GMapping()
    load_state_dict(mapping, read_weights(path), source=path)
    mapping.eval()
    return mapping


def cached_gaussian_fit(
    mapping_path: str | Path,
    samples: int = 1_000_000,
    seed: int = 0,
    chunk: int = 10_000,
    load_mapping: Callable[[Path], paddle.nn.Layer] = load_stylegan_mapping,
    gain: float = 1.0,
) -> GaussianFit:
    """The fit of the mapping network in ``mapping_path``, computed once and then read from an
    ``.npz`` in the cache folder keyed by the file's SHA-256, the sample count and the seed.

    ``load_mapping`` builds the network from the file (PULSE's StyleGAN ``G_mapping`` by default);
    it is only called when the cache has no fit. ``gain`` is as ``fit_gaussian`` takes it.
    """
    source = Path(mapping_path)
    if not source.is_file():
        raise WeightsError(f"{source}: no such mapping network file")
    scaled = "" if gain == 1.0 else f"-gain{gain:g}"
    cached = cache_dir() / "gaussian_fit" / f"{sha256_file(source)}-n{samples}-seed{seed}{scaled}.npz"
    if cached.is_file():
        try:
            return load_gaussian_fit(cached)
        except WeightsError:
            pass  # a damaged cache entry is recomputed and replaced
    fit = fit_gaussian(load_mapping(source), samples=samples, seed=seed, chunk=chunk, gain=gain)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(cached, "wb") as file:
        np.savez(file, mean=fit.mean.numpy(), std=fit.std.numpy())
    return fit
