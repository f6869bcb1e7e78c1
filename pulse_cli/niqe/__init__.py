"""NIQE, the no-reference image quality score (lower is more natural), in two variants and two backends.

``niqe(image, variant="matlab", backend="numpy")``: ``matlab`` is the official MATLAB release (as
BasicSR reproduces it), ``paddle-pulse`` the computation behind the Paddle PULSE reproduction's
table. The ``numpy`` backend computes the block features in NumPy; ``onnx`` runs them as a graph
built in Paddle and exported to ONNX (cached per variant, image size and package version). Both
end with the same Mahalanobis step against the pristine model.
"""

from __future__ import annotations

from pulse_cli.niqe.errors import NiqeError, NiqeTooSmall
from pulse_cli.niqe.features import block_features
from pulse_cli.niqe.luma import ImageLike, block_grid, image_name, to_array, to_luma
from pulse_cli.niqe.score import niqe_score
from pulse_cli.niqe.variants import BLOCK, VARIANTS, get_variant

BACKENDS = ("numpy", "onnx")

__all__ = ["BACKENDS", "VARIANTS", "NiqeError", "NiqeTooSmall", "niqe"]


def niqe(image: ImageLike, variant: str = "matlab", backend: str = "numpy") -> float:
    """The NIQE of ``image``: a path, a PIL image, or an H×W / H×W×3 uint8 or float array in [0, 255].

    Raises NiqeError (naming the image) when it cannot be read (files go through
    ``images.decode_image``: no huge images, no decompression bombs), NiqeTooSmall when it holds
    fewer than two whole 96×96 blocks; ValueError for an unknown variant or backend.
    """
    chosen = get_variant(variant)
    if backend not in BACKENDS:
        raise ValueError(f"unknown NIQE backend {backend!r}; known: {', '.join(BACKENDS)}")
    name = image_name(image)
    array = to_array(image)
    rows, cols = block_grid(array.shape, name)
    array = array[: rows * BLOCK, : cols * BLOCK]
    if backend == "onnx":
        from pulse_cli.niqe.onnx_backend import onnx_block_features

        features = onnx_block_features(array, chosen)
    else:
        features = block_features(to_luma(array, chosen), chosen)
    return niqe_score(features, chosen, name)
