"""Whether an upsampled face is still the person in the photo: dlib's face-recognition ResNet.

The distance between two faces is the Euclidean distance of their 128-d dlib descriptors (the
ResNet of ``face_recognition_models``, 99.38 % on LFW); dlib's own rule is *the same person below
0.6*. Both faces here are FFHQ-aligned crops (the photo's face at the size it holds, the output at
the model's), so each is found in the same place: dlib's HOG detector where it finds one, else
``ALIGNED_BOX``, the part of an FFHQ crop a face fills. Five landmarks (dlib's 5-point predictor)
then give the 150 px chip the ResNet reads.

dlib is optional (``pip install "pulse-cli[identity]"``: ``dlib-bin`` and ``face-recognition-models``):
this is a measurement for studies and ``pulse upsample --identity``, never needed to upsample.
``face_recognition_models`` is only a data package; its files are located without importing it
(its ``__init__`` needs ``pkg_resources``).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from pulse_cli.faces.align import align

SAME_PERSON = 0.6  # dlib's threshold for its ResNet's descriptors
CHIP_SIDE = 256  # faces are compared at this side: more is no sharper for a 150 px chip
ALIGNED_BOX = (0.22, 0.25, 0.78, 0.85)  # left, top, right, bottom of an FFHQ crop's face, as fractions
MODEL_FILES = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")


class IdentityUnavailable(RuntimeError):
    """dlib or its model files are not installed."""


def _model_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise IdentityUnavailable(
            "identity needs face-recognition-models: pip install \"pulse-cli[identity]\""
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise IdentityUnavailable(f"face-recognition-models lacks {', '.join(missing)} in {folder}")
    return folder


class IdentityScorer:
    """dlib's detector, 5-point landmarks and face-recognition ResNet, loaded once."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError:
            raise IdentityUnavailable("identity needs dlib: pip install \"pulse-cli[identity]\"") from None
        folder = _model_dir()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(folder / MODEL_FILES[0]))
        self._resnet = dlib.face_recognition_model_v1(str(folder / MODEL_FILES[1]))

    def descriptor(self, face: np.ndarray) -> np.ndarray:
        """The 128-d descriptor of an FFHQ-aligned face crop (float [3, H, W] RGB in [0, 1])."""
        pixels = np.clip(np.asarray(face, np.float32).transpose(1, 2, 0) * 255.0 + 0.5, 0, 255)
        image = Image.fromarray(pixels.astype(np.uint8), "RGB")
        if image.size != (CHIP_SIDE, CHIP_SIDE):
            image = image.resize((CHIP_SIDE, CHIP_SIDE), Image.Resampling.BICUBIC)
        rgb = np.ascontiguousarray(np.asarray(image))
        found = self._detector(rgb, 1)
        if len(found):
            box = max(found, key=lambda rect: rect.area())
        else:
            left, top, right, bottom = (int(round(v * CHIP_SIDE)) for v in ALIGNED_BOX)
            box = self._dlib.rectangle(left, top, right, bottom)
        shape = self._landmarks(rgb, box)
        return np.asarray(self._resnet.compute_face_descriptor(rgb, shape), np.float64)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """dlib's distance between two FFHQ-aligned face crops: the same person below ``SAME_PERSON``."""
        return float(np.linalg.norm(self.descriptor(a) - self.descriptor(b)))


def held_face(photo: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The face with ``keypoints`` in ``photo`` (float [3, H, W]) as the photo holds it: its FFHQ
    crop at the side it spans in the photo (``CHIP_SIDE`` at most), so nothing is invented."""
    span = align(photo, keypoints, 16).side_in_photo
    return align(photo, keypoints, int(np.clip(round(span), 16, CHIP_SIDE))).image


@functools.lru_cache(maxsize=1)
def identity_scorer() -> IdentityScorer:
    """The ``IdentityScorer``, loaded once per process; ``IdentityUnavailable`` without dlib."""
    return IdentityScorer()
