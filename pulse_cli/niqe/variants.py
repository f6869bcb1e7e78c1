"""The two NIQE computations pulse-cli knows, and the numeric tables both backends share.

``matlab`` is the official MATLAB release (Mittal et al. 2012) as BasicSR reproduces it;
``paddle-pulse`` is the non-standard computation the Paddle PULSE reproduction reported its
table with. A :class:`Variant` names every point where the two differ, so one implementation
(per backend) serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.special import gamma

BLOCK = 96
"""Side of the square blocks at the first scale (the official recommendation); half at the second."""

MSCN_TAPS = 7
MSCN_SIGMA = 7 / 6
MSCN_C = 1.0
"""The MSCN window is a 7-tap Gaussian of sigma 7/6; the normalisation adds 1 to the local std."""

SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
"""The neighbour offsets (rows, columns) of the four pairwise-product maps, in feature order."""

FEATURES_PER_SCALE = 18


@dataclass(frozen=True)
class Variant:
    """Every choice by which a NIQE computation can differ from the standard one.

    luma: ``"ycbcr"`` (Y of MATLAB ``rgb2ycbcr``, rounded) or ``"pil"`` (PIL's 8-bit ``convert('L')``).
    window: the 7 MSCN taps: ``"float64"`` (MATLAB's ``fspecial``, applied in one 2-D pass: local
        statistics rounded to float32 once) or ``"float32"`` (the seed's taps computed in float32,
        applied as two 1-D passes each stored in float32).
    padding: how the MSCN window sees past the image edge: ``"nearest"`` (edge replication) or ``"zero"``.
    downscale: the second scale: ``"imresize"`` (MATLAB bicubic with antialiasing) or ``"box"`` (2x2 mean).
    alpha_max: last entry of the AGGD shape grid ``0.2:0.001:alpha_max``.
    right_includes_zero: the right-side AGGD spread takes ``x >= 0`` instead of ``x > 0``.
    empty_side_is_zero: an AGGD side with no samples has spread 0 (instead of NaN); a zero right
        spread then gives an infinite left/right ratio, and a zero second moment an infinite r.
    diagonal_repeats_left: for the two diagonal shifts the fourth feature repeats beta_l.
    nan_aware: mean over blocks ignores NaN and the covariance uses the NaN-free rows only.
    divisor: the distance is divided by this.
    """

    name: str
    luma: str
    window: str
    padding: str
    downscale: str
    alpha_max: float
    right_includes_zero: bool
    empty_side_is_zero: bool
    diagonal_repeats_left: bool
    nan_aware: bool
    divisor: float


MATLAB = Variant(
    name="matlab",
    luma="ycbcr",
    window="float64",
    padding="nearest",
    downscale="imresize",
    alpha_max=10.0,
    right_includes_zero=False,
    empty_side_is_zero=False,
    diagonal_repeats_left=False,
    nan_aware=True,
    divisor=1.0,
)

PADDLE_PULSE = Variant(
    name="paddle-pulse",
    luma="pil",
    window="float32",
    padding="zero",
    downscale="box",
    alpha_max=9.999,
    right_includes_zero=True,
    empty_side_is_zero=True,
    diagonal_repeats_left=True,
    nan_aware=False,
    divisor=2.0,
)

VARIANTS: dict[str, Variant] = {v.name: v for v in (MATLAB, PADDLE_PULSE)}


def get_variant(name: str) -> Variant:
    """The variant called ``name``; a ValueError listing the known ones otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown NIQE variant {name!r}; known: {', '.join(VARIANTS)}") from None


@dataclass(frozen=True)
class AlphaGrid:
    """The grid of AGGD shapes alpha searched by moment matching, with per-entry tables.

    ``rho[i] = Γ(2/α)² / (Γ(1/α) Γ(3/α))`` is the ratio the fit matches (increasing in α);
    ``beta_scale[i] = sqrt(Γ(1/α)/Γ(3/α))`` turns a side's spread into its beta;
    ``mean_scale[i] = Γ(2/α)/Γ(1/α)`` turns ``beta_r - beta_l`` into the distribution's mean.
    """

    alpha: np.ndarray
    rho: np.ndarray
    beta_scale: np.ndarray
    mean_scale: np.ndarray


@cache
def alpha_grid(alpha_max: float) -> AlphaGrid:
    """``0.2:0.001:alpha_max`` built as NumPy's ``arange`` builds it (the references do), with its tables."""
    alpha = np.arange(0.2, alpha_max + 0.001 / 2, 0.001)
    g1, g2, g3 = gamma(1 / alpha), gamma(2 / alpha), gamma(3 / alpha)
    tables = AlphaGrid(alpha=alpha, rho=g2**2 / (g1 * g3), beta_scale=np.sqrt(g1 / g3), mean_scale=g2 / g1)
    for table in (tables.alpha, tables.rho, tables.beta_scale, tables.mean_scale):
        table.flags.writeable = False
    return tables


def gaussian_taps(window: str = "float64") -> np.ndarray:
    """The normalized 1-D MSCN window (float64 array) computed in ``window`` precision.

    In float64 its outer square is MATLAB's ``fspecial('gaussian', 7, 7/6)``; in float32 it is
    the seed's ``gen_gauss_window(3, 7/6)``: exponentials, sum and division all in float32
    (whose taps sum to 1 + 2e-8, which the local variances of flat patches feel).
    """
    dtype = {"float64": np.float64, "float32": np.float32}[window]
    x = np.arange(MSCN_TAPS, dtype=dtype) - MSCN_TAPS // 2
    variance = dtype(MSCN_SIGMA) * dtype(MSCN_SIGMA)
    taps = np.exp(dtype(-0.5) * (x * x) / variance)
    total = dtype(1.0)
    for k in range(1, MSCN_TAPS // 2 + 1):
        total += dtype(2.0) * taps[MSCN_TAPS // 2 + k]
    return (taps / total).astype(np.float64)


def imresize_half_taps() -> np.ndarray:
    """The 8 taps of MATLAB ``imresize(·, 0.5)`` (bicubic a=-0.5, antialiased: kernel widened 2x).

    Output sample ``o`` (0-based) weighs input samples ``2o-3 .. 2o+4``; the weights sum to 1.
    """
    distance = np.abs(np.arange(-3.5, 4.0, 1.0)) / 2
    near = 1.5 * distance**3 - 2.5 * distance**2 + 1
    far = -0.5 * distance**3 + 2.5 * distance**2 - 4 * distance + 2
    taps = np.where(distance <= 1, near, np.where(distance <= 2, far, 0.0)) / 2
    return taps / taps.sum()
