"""Finding faces and their five landmarks in a photo with MTCNN (Zhang et al. 2016).

The weights are those of the ``mtcnn`` 1.0.0 package; the cascade is the classic one (Zhang et
al.'s code as ported by facenet and by ``mtcnn`` before 1.0), whose detections the reference
fixtures hold: an image pyramid from a smallest face of 20 px down by 0.709 (level sides rounded
up), P-net windows above 0.6 merged by NMS per level (IoU 0.5) and across levels (0.7), R-net above
0.7 (NMS 0.7), O-net above 0.7 (NMS 0.7 over the smaller box). The networks run in onnxruntime (graphs
built from the Paddle layers' weights; three times faster on CPU) or in Paddle; the rest is numpy,
with Pillow for resizing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from pulse_cli.faces import boxes as B
from pulse_cli.faces.onnx_graphs import network_graph
from pulse_cli.faces.sampling import Sampler
from pulse_cli.faces.weights import load_networks

RUNTIMES = ("onnxruntime", "paddle")

KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # left: the photo's left
MIN_FACE = 20
SCALE_FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.7)
PYRAMID_MIN = 12  # P-net's window: the smallest pyramid level
BATCH = 256  # R-net/O-net patches per forward pass: bounds memory on crowded photos


@dataclass(frozen=True)
class Face:
    """One face found in a photo, in the photo's pixels (x right, y down, pixel centres at integers).

    ``box`` is ``(x, y, width, height)``; ``keypoints`` [5, 2] are the ``(x, y)`` of ``KEYPOINTS``;
    ``score`` is O-net's face probability.
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray

    def landmark(self, name: str) -> np.ndarray:
        """The ``(x, y)`` of one of ``KEYPOINTS``."""
        return self.keypoints[KEYPOINTS.index(name)]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record, keyed like the ``mtcnn`` package's output (coordinates not rounded)."""
        return {
            "box": [round(float(v), 2) for v in self.box],
            "confidence": round(float(self.score), 6),
            "keypoints": {
                name: [round(float(v), 2) for v in point] for name, point in zip(KEYPOINTS, self.keypoints)
            },
        }


def pyramid_scales(width: int, height: int, min_face: int, factor: float) -> list[float]:
    """The pyramid's scales: from ``12 / min_face`` down by ``factor`` while the shorter side stays at
    least P-net's 12 px window."""
    scale, shorter, scales = PYRAMID_MIN / min_face, min(width, height), []
    while shorter * scale >= PYRAMID_MIN:
        scales.append(scale)
        scale *= factor
    return scales


Network = Callable[[np.ndarray], list[np.ndarray]]  # [N, H, W, C] input -> the layer's outputs


def _paddle_network(layer: paddle.nn.Layer) -> Network:
    def run(patches: np.ndarray) -> list[np.ndarray]:
        with paddle.no_grad():
            outputs = layer(paddle.to_tensor(np.ascontiguousarray(patches.transpose(0, 3, 1, 2))))
        return [tensor.numpy() for tensor in outputs]

    return run


def _onnx_network(name: str, layer: paddle.nn.Layer) -> Network:
    import onnxruntime

    state = {key: value.numpy() for key, value in layer.state_dict().items()}
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        network_graph(name, state).SerializeToString(), options, providers=["CPUExecutionProvider"]
    )

    def run(patches: np.ndarray) -> list[np.ndarray]:
        image = np.ascontiguousarray(patches.transpose(0, 3, 1, 2), np.float32)
        *outputs, probability = session.run(None, {"image": image})
        return [*outputs, probability[:, 1]]  # the face class, as the Paddle layers return it

    return run


class Detector:
    """MTCNN with its networks loaded once; call it on photos.

    ``weights``: None for the cache (filled from PyPI on first use), the pinned ``mtcnn`` wheel, or
    a converted ``.pdparams``. ``min_face``: the smallest face side looked for, in pixels.
    ``runtime``: ``onnxruntime`` (CPU) or ``paddle`` (Paddle's current device).
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        min_face: int = MIN_FACE,
        scale_factor: float = SCALE_FACTOR,
        thresholds: Sequence[float] = THRESHOLDS,
        runtime: str = "onnxruntime",
    ) -> None:
        if min_face < PYRAMID_MIN:
            raise ValueError(f"min_face {min_face} is below {PYRAMID_MIN} px, the smallest window MTCNN sees")
        if not 0 < scale_factor < 1:
            raise ValueError(f"scale_factor {scale_factor} must be between 0 and 1")
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
        layers = load_networks(None if weights is None else Path(weights))
        if runtime == "paddle":
            self.pnet, self.rnet, self.onet = (_paddle_network(layer) for layer in layers)
        else:
            self.pnet, self.rnet, self.onet = (
                _onnx_network(n, layer) for n, layer in zip(("pnet", "rnet", "onet"), layers)
            )
        self.min_face, self.scale_factor = min_face, scale_factor
        self.thresholds = tuple(float(t) for t in thresholds)

    def __call__(self, image: np.ndarray) -> list[Face]:
        """The faces in ``image`` (float [3, H, W] RGB in [0, 1]), highest score first."""
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"expected an RGB image [3, H, W], got shape {list(image.shape)}")
        pixels = np.asarray(image, np.float32).transpose(1, 2, 0) * 255.0
        photo = Sampler(pixels)
        candidates = self._propose(photo)
        if len(candidates):
            candidates = self._refine(photo, candidates)
        if not len(candidates):
            return []
        found, landmarks = self._output(photo, candidates)
        return [
            Face(box=(x1, y1, x2 - x1, y2 - y1), score=float(score), keypoints=points)
            for (x1, y1, x2, y2, score), points in zip(found[:, :5].tolist(), landmarks)
        ]

    def _propose(self, photo: Sampler) -> np.ndarray:
        """P-net over the pyramid: square whole-pixel candidate boxes [N, 5]."""
        height, width = photo.height, photo.width
        levels = [np.empty((0, 9))]
        for scale in pyramid_scales(width, height, self.min_face, self.scale_factor):
            level = photo.level(int(np.ceil(width * scale)), int(np.ceil(height * scale)))
            offsets, probability = self.pnet(_normalised(level)[None])
            found = B.proposals(offsets[0], probability[0], scale, self.thresholds[0])
            levels.append(found[B.suppress(found, 0.5)])
        candidates = np.concatenate(levels)
        candidates = candidates[B.suppress(candidates, 0.7)]
        moved = B.apply_offsets(candidates[:, :5], candidates[:, 5:9], plus_one=False)
        return _whole(B.square(moved))

    def _refine(self, photo: Sampler, candidates: np.ndarray) -> np.ndarray:
        """R-net on 24×24 patches: the surviving boxes, moved and squared [N, 5]."""
        offsets, scores = self._run(self.rnet, photo, candidates, 24)
        keep = scores > self.thresholds[1]
        candidates = np.concatenate([candidates[keep, :4], scores[keep, None]], axis=1)
        order = B.suppress(candidates, 0.7)
        return _whole(B.square(B.apply_offsets(candidates[order], offsets[keep][order])))

    def _output(self, photo: Sampler, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """O-net on 48×48 patches: final boxes [N, 5] and landmarks [N, 5, 2]."""
        offsets, landmarks, scores = self._run(self.onet, photo, candidates, 48)
        keep = scores > self.thresholds[2]
        candidates = np.concatenate([candidates[keep, :4], scores[keep, None]], axis=1)
        points = B.place_landmarks(candidates, landmarks[keep])
        found = B.apply_offsets(candidates, offsets[keep])
        order = B.suppress(found, 0.7, method="min")
        return found[order], points[order]

    @staticmethod
    def _run(network: Network, photo: Sampler, candidates: np.ndarray, size: int) -> list[np.ndarray]:
        """``network`` on the ``size``-pixel patches of ``candidates``, in batches; its outputs as arrays."""
        outputs: list[list[np.ndarray]] = []
        for start in range(0, len(candidates), BATCH):
            patches = _normalised(photo.patches(candidates[start : start + BATCH], size))
            outputs.append(network(patches))
        return [np.concatenate(parts).astype(np.float64) for parts in zip(*outputs)]


def _normalised(pixels: np.ndarray) -> np.ndarray:
    """0..255 pixels as the networks were trained on them: about -1..1."""
    return (pixels - 127.5) * 0.0078125


def _whole(boxes: np.ndarray) -> np.ndarray:
    """Boxes truncated to whole pixels, without those too thin to crop."""
    boxes = boxes.copy()
    boxes[:, :4] = np.fix(boxes[:, :4])
    return boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]


@functools.lru_cache(maxsize=1)
def default_detector() -> Detector:
    """A ``Detector`` with the default weights and settings, loaded once per process."""
    return Detector()


def detect(image: np.ndarray) -> list[Face]:
    """The faces in ``image`` (float [3, H, W] RGB in [0, 1]) found by the default ``Detector``."""
    return default_detector()(image)
