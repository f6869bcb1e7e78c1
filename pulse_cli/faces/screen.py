"""Which of MTCNN's detections are faces worth upsampling.

MTCNN's cascade (``pulse_cli.faces.detect``, thresholds 0.6/0.7/0.7 as the reference package has
them) also passes non-faces: on real photos a fist, hair, a suit and an ashtray came through at O-net
confidences of 0.73-0.94, and PULSE then paints a 1024 px face on each. Every true face of the
study photos scored 0.998 or more (README, "Faithful faces"), so a detection is kept only from
``MIN_CONFIDENCE`` up; the ones dropped are named with their box and confidence.
"""

from __future__ import annotations

from pulse_cli.faces.detect import Face

MIN_CONFIDENCE = 0.95  # false faces measured 0.73-0.94, true faces 0.998-1.0


def describe(face: Face) -> str:
    """A detection named for a person: its box and confidence."""
    x, y, width, height = (int(round(v)) for v in face.box)
    return f"{width}x{height} px at ({x}, {y}), confidence {face.score:.2f}"


def drop_reason(face: Face, min_confidence: float = MIN_CONFIDENCE) -> str | None:
    """Why a detection is not taken for a face, or None when it is."""
    if face.score < min_confidence:
        return f"{describe(face)}: below {min_confidence:g}, not taken for a face"
    return None
