"""Consistency with the input: the part of the input's detail a searched image misses, put back.

A search stops where the generator can get: on real faces searched at 64 px that is an image whose
downscale is off by an L2 of 0.002 or more (eps at best), and that residual is where the person is
(README, "Faithful faces": the same search's outputs were another person for dlib on 12 of 30 faces;
with this step, on none). Every image ``x`` splits into what the downscale ``D`` sees (its range)
and what it does not (its null space): the generator's image is kept in the null space, the finer
detail no input holds, and corrected in the range, by the least change that makes ``D(x)`` the input
(``x + A⁺ r A⁺ᵀ`` for a residual ``r``, with ``A⁺`` the right inverse of PULSE's 1-D bicubic
downscale ``A``: ``A A⁺ = I``). This is back-projection (Irani & Peleg 1991), as consistency
enforcing (Bahat & Michaeli, CVPR 2020) and range–null-space decomposition (Wang et al., ICLR 2023)
use it on generated images.

Only the residual's lower band is put back (a Gaussian of ``sigma`` input pixels): its finest,
pixel-level part, rendered through the downscale's 4-pixel-wide kernels, would lay a grid of blobs
over the image, and what remains of it is far below eps. A few rounds, each clipped to the image's
[0, 1], settle what the clipping undoes.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.ndimage import gaussian_filter

from pulse_cli.graphs.bicubic import downscale_array, downscale_matrix

ROUNDS = 3  # the lower band's residual after three: < 1 % of the first's on the study's faces


@functools.lru_cache(maxsize=8)
def right_inverse(size: int, factor: int) -> np.ndarray:
    """``A⁺`` [size, size // factor], the least-norm right inverse of PULSE's 1-D downscale ``A``
    (``downscale_matrix``): ``A A⁺ = I``, so ``A⁺ r`` is the smallest signal that downscales to ``r``."""
    matrix = downscale_matrix(size, factor).astype(np.float64)
    inverse = matrix.T @ np.linalg.inv(matrix @ matrix.T)
    inverse.setflags(write=False)  # cached and shared
    return inverse


def consistent(images: np.ndarray, refs: np.ndarray, sigma: float, rounds: int = ROUNDS) -> np.ndarray:
    """``images`` [B, 3, R, R] in [0, 1] with the lower band (a Gaussian of ``sigma`` pixels of the
    references) of their residual against ``refs`` [B, 3, r, r] put back; float32, in [0, 1]."""
    side, small = images.shape[-1], refs.shape[-1]
    if side % small:
        raise ValueError(f"a {side} px image does not downscale to {small} px by a whole factor")
    factor = side // small
    inverse = right_inverse(side, factor)
    refs = np.asarray(refs, np.float64)
    out = np.asarray(images, np.float64)
    for _ in range(rounds):
        residual = gaussian_filter(refs - downscale_array(out, factor), (0, 0, sigma, sigma), mode="reflect")
        out = np.clip(out + inverse @ residual @ inverse.T, 0.0, 1.0)
    return out.astype(np.float32)
