"""The contact sheet: one picture that shows, per image, what PULSE was given and what it made.

Rows, each labelled: the low-resolution input enlarged with nearest neighbours (what it really
holds), the input enlarged bicubically (the naive upscale), PULSE's output, and PULSE's output
downscaled with PULSE's own bicubic (what the search matched against the input), optionally
followed by the original the input was made from. One column per image, titled with its name
and L2 (green when it met eps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pulse_cli.atomic import atomic_save_image
from pulse_cli.graphs.bicubic import downscale_images
from pulse_cli.images import to_pil

ROW_LABELS = ("input (nearest)", "input (bicubic)", "PULSE", "PULSE downscaled")
ORIGINAL_LABEL = "original"
MIN_CELL, MAX_CELL = 128, 256
GAP = 4
TITLE_HEIGHT = 34
BACKGROUND = (255, 255, 255)
INK, GOOD, BAD = (20, 20, 20), (0, 128, 0), (190, 0, 0)


@dataclass(frozen=True)
class SheetColumn:
    """One image's column: its input [3,r,r], PULSE's output [3,R,R] (floats in [0,1]), and
    optionally the original [3,R,R] the input was made from."""

    title: str
    lr: np.ndarray
    output: np.ndarray
    l2: float | None = None
    eps_met: bool | None = None
    original: np.ndarray | None = None


def cell_size(resolution: int) -> int:
    """The side of one picture on the sheet: the output's, kept between 128 and 256 px."""
    return min(max(resolution, MIN_CELL), MAX_CELL)


def pulse_downscale(image: np.ndarray, side: int) -> np.ndarray:
    """PULSE's bicubic downscale of one [3,R,R] image to ``side`` px."""
    return downscale_images(image[None], image.shape[-1] // side)[0]


def _fit(image: np.ndarray, cell: int, resample: Image.Resampling) -> Image.Image:
    picture = to_pil(image)
    if picture.size[0] > cell:
        return picture.resize((cell, cell), Image.Resampling.LANCZOS)
    return picture.resize((cell, cell), resample)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType has only the fixed bitmap font
        return ImageFont.load_default()


def _pictures(column: SheetColumn, cell: int) -> list[Image.Image]:
    nearest, bicubic = Image.Resampling.NEAREST, Image.Resampling.BICUBIC
    pictures = [
        _fit(column.lr, cell, nearest),
        _fit(column.lr, cell, bicubic),
        _fit(column.output, cell, nearest),
        _fit(pulse_downscale(column.output, column.lr.shape[-1]), cell, nearest),
    ]
    if column.original is not None:
        pictures.append(_fit(column.original, cell, nearest))
    return pictures


def render_contact_sheet(columns: Sequence[SheetColumn], resolution: int) -> Image.Image:
    """The sheet for these columns, for a model of ``resolution`` px."""
    if not columns:
        raise ValueError("a contact sheet needs at least one image")
    cell = cell_size(resolution)
    labels = list(ROW_LABELS)
    if all(column.original is not None for column in columns):
        labels.append(ORIGINAL_LABEL)
    font, small = _font(14), _font(12)
    label_width = int(max(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(t, font=font) for t in labels))
    label_width += 3 * GAP
    width = label_width + len(columns) * (cell + GAP) + GAP
    height = TITLE_HEIGHT + len(labels) * (cell + GAP) + GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for row, label in enumerate(labels):
        top = TITLE_HEIGHT + row * (cell + GAP)
        draw.text((GAP, top + cell // 2), label, fill=INK, font=font, anchor="lm")
    for index, column in enumerate(columns):
        left = label_width + index * (cell + GAP)
        draw.text((left, 2), column.title[:24], fill=INK, font=font)
        if column.l2 is not None:
            colour = GOOD if column.eps_met else BAD
            draw.text((left, 18), f"L2 {column.l2:.4f}", fill=colour, font=small)
        for row, picture in enumerate(_pictures(column, cell)[: len(labels)]):
            sheet.paste(picture, (left, TITLE_HEIGHT + row * (cell + GAP)))
    return sheet


def save_contact_sheet(columns: Sequence[SheetColumn], path: str | Path, resolution: int) -> Path:
    """Render the sheet and write it atomically as PNG."""
    atomic_save_image(render_contact_sheet(columns, resolution), path)
    return Path(path)
