"""Box arithmetic of MTCNN's cascade, as the reference implementation computes it.

This is the classic cascade (Zhang et al.'s code as ported by facenet and by ``mtcnn`` before 1.0,
whose detections the test fixtures hold): P-net windows snapped to whole pixels, NMS before the
P-net offsets are applied, greedy NMS with ``+ 1`` pixel areas, and whole-pixel boxes fed to R-net
and O-net. Boxes are float arrays [N, ≥5] of ``x1, y1, x2, y2, score`` (then any extra columns),
in photo pixels with x1..x2 and y1..y2 inclusive.
"""

from __future__ import annotations

import numpy as np

CELL = 12  # the P-net window, in pixels of a pyramid level
STRIDE = 2  # P-net's output stride


def proposals(offsets: np.ndarray, probability: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """P-net windows of one pyramid level whose face probability reaches ``threshold``, in whole
    photo pixels: [N, 9] of box, score and the four offsets not yet applied. ``offsets`` [4, h, w],
    ``probability`` [h, w]."""
    ys, xs = np.nonzero(probability >= threshold)
    corners = [np.fix((STRIDE * v + start) / scale) for start in (1, CELL) for v in (xs, ys)]
    return np.stack([*corners, probability[ys, xs], *offsets[:, ys, xs]], axis=1).astype(np.float64)


def suppress(boxes: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression: the indices of the boxes kept, highest score first. A box
    is dropped when a kept one overlaps it by more than ``threshold`` (intersection over union, or
    over the smaller box with ``method="min"``)."""
    if method not in ("union", "min"):
        raise ValueError(f"unknown overlap method {method!r}; use 'union' or 'min'")
    x1, y1, x2, y2, score = boxes[:, :5].T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(score)
    kept = []
    while order.size:
        best, rest = order[-1], order[:-1]
        kept.append(best)
        width = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        height = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        inter = width * height
        if method == "min":
            overlap = inter / np.minimum(area[best], area[rest])
        else:
            overlap = inter / (area[best] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(kept, dtype=np.intp)


def square(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to a square of its longer side about its centre."""
    result = boxes.copy()
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    result[:, 0] = boxes[:, 0] + width * 0.5 - side * 0.5
    result[:, 1] = boxes[:, 1] + height * 0.5 - side * 0.5
    result[:, 2] = result[:, 0] + side
    result[:, 3] = result[:, 1] + side
    return result


def apply_offsets(boxes: np.ndarray, offsets: np.ndarray, plus_one: bool = True) -> np.ndarray:
    """Corners moved by ``offsets`` [N, 4] times the box size (``x2 - x1 + 1``, or ``x2 - x1``
    for P-net's windows with ``plus_one=False``)."""
    result = boxes.copy()
    extra = 1 if plus_one else 0
    width = boxes[:, 2] - boxes[:, 0] + extra
    height = boxes[:, 3] - boxes[:, 1] + extra
    result[:, :4] += offsets * np.stack([width, height, width, height], axis=1)
    return result


def place_landmarks(boxes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """O-net's landmarks [N, 10] (5 x then 5 y, as fractions of the box) in photo pixels [N, 5, 2]."""
    width = boxes[:, 2:3] - boxes[:, 0:1] + 1
    height = boxes[:, 3:4] - boxes[:, 1:2] + 1
    xs = width * landmarks[:, :5] + boxes[:, 0:1] - 1
    ys = height * landmarks[:, 5:] + boxes[:, 1:2] - 1
    return np.stack([xs, ys], axis=2)
