"""Drawing what the detector and the alignment found, for checking before a long search."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from pulse_cli.faces.align import Alignment
from pulse_cli.faces.detect import Face
from pulse_cli.images import to_pil

BOX_COLOUR = (0, 255, 0)
POINT_COLOURS = ((255, 0, 0), (0, 128, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255))  # KEYPOINTS' order
QUAD_COLOUR = (255, 160, 0)


def annotate(image: np.ndarray, faces: Sequence[Face], alignments: Sequence[Alignment]) -> Image.Image:
    """``image`` (float [3, H, W] in [0, 1]) with each face's box (green, numbered from 1), its five
    points (left eye red, right eye blue, nose yellow, mouth corners magenta and cyan) and its FFHQ
    crop (orange, a tick on the crop's top edge)."""
    canvas = to_pil(image)
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(max(canvas.size) / 400))
    for k, (face, alignment) in enumerate(zip(faces, alignments, strict=True), start=1):
        x, y, w, h = face.box
        draw.rectangle([x, y, x + w, y + h], outline=BOX_COLOUR, width=width)
        draw.text((x + 2 * width, y + 2 * width), str(k), fill=BOX_COLOUR)
        quad = [tuple(point) for point in alignment.quad.tolist()]
        draw.line([*quad, quad[0]], fill=QUAD_COLOUR, width=width)
        top_middle = (alignment.quad[0] + alignment.quad[3]) / 2
        centre = alignment.quad.mean(axis=0)
        tick_end = top_middle + (centre - top_middle) * 0.1
        draw.line([tuple(top_middle), tuple(tick_end)], fill=QUAD_COLOUR, width=width)
        radius = max(2.0, w / 40)
        for (px, py), colour in zip(face.keypoints.tolist(), POINT_COLOURS):
            draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=colour)
    return canvas
