"""The last NIQE step: the distance between the image's feature Gaussian and the pristine one.

The pristine model ships as ``pulse_cli/data/niqe_pristine.npz`` (``mu_pris`` [36], ``cov_pris``
[36, 36]): ``mu_prisparam`` and ``cov_prisparam`` of ``modelparameters.mat`` in the official
MATLAB release (Mittal, Soundararajan and Bovik, "Making a Completely Blind Image Quality
Analyzer", 2012), as BasicSR 1.4.2 redistributes them (``basicsr/metrics/niqe_pris_params.npz``
in its sdist on PyPI); the file's ``source`` entry says the same.
"""

from __future__ import annotations

import warnings
from functools import cache
from importlib import resources

import numpy as np

from pulse_cli.niqe.errors import NiqeError
from pulse_cli.niqe.variants import Variant

PRISTINE_FILE = "niqe_pristine.npz"


@cache
def pristine() -> tuple[np.ndarray, np.ndarray]:
    """The pristine mean [36] and covariance [36, 36] (read-only)."""
    with resources.files("pulse_cli").joinpath("data", PRISTINE_FILE).open("rb") as file:
        data = np.load(file)
        mu, cov = data["mu_pris"], data["cov_pris"]
    mu.flags.writeable = False
    cov.flags.writeable = False
    return mu, cov


def niqe_score(features: np.ndarray, variant: Variant, name: str = "image") -> float:
    """NIQE from the [blocks, 36] features: ``sqrt(d · pinv((Σp + Σd)/2) · dᵀ) / divisor``, d = μp − μd."""
    if variant.nan_aware:
        complete = features[~np.isnan(features).any(axis=1)]
        with warnings.catch_warnings():
            # an all-NaN column ("mean of empty slice") is reported below as an error
            warnings.simplefilter("ignore", RuntimeWarning)
            mu = np.nanmean(features, axis=0)
    else:
        complete = features
        mu = features.mean(axis=0)
    if len(complete) < 2 or not np.isfinite(mu).all():
        raise NiqeError(
            f"{name}: too few blocks with usable statistics ({len(complete)} of {len(features)}): "
            "the image is too flat for NIQE"
        )
    mu_pris, cov_pris = pristine()
    cov = np.cov(complete, rowvar=False)
    diff = mu_pris - mu
    quality = float(diff @ np.linalg.pinv((cov_pris + cov) / 2) @ diff)
    if not np.isfinite(quality):
        raise NiqeError(f"{name}: NIQE is not finite for this image (flat or saturated blocks)")
    return float(np.sqrt(quality)) / variant.divisor
