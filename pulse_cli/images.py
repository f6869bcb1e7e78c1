"""Reading low-resolution input images: any common format and mode in, RGB floats out, or a clear error.

``decode_image`` is the guarded decode itself (size limit from the header, decompression bombs,
one-line errors); ``pulse niqe`` reads its files through it too.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pulse_cli.errors import first_line

FORMATS = ("PNG", "JPEG", "BMP", "WEBP")
MAX_PIXELS = 4096 * 4096  # far above any sensible input; more is a decompression bomb or a mistake
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP"}
ORIENTATION_TAG = 0x0112  # EXIF Orientation
T = TypeVar("T")


class InputImageError(ValueError):
    """An input that cannot be upsampled; the message is one line naming the file and the cause."""

    def __init__(self, path: str | Path, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = Path(path)
        self.cause = cause


def _to_rgb(image: Image.Image) -> np.ndarray:
    """A decoded image of any mode as float32 RGB [H, W, 3] in [0, 1]; alpha is composited on black."""
    if image.mode in SIXTEEN_BIT_MODES:
        gray = np.asarray(image, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def image_kind(path: Path) -> str | None:
    """The supported format whose magic bytes ``path`` starts with, if any (None as well when it
    cannot be read)."""
    try:
        with open(path, "rb") as file:
            head = file.read(12)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in SIGNATURES.items() if head.startswith(magic)), None)


def decode_image(
    path: str | Path, convert: Callable[[Image.Image], T], formats: Sequence[str] | None = FORMATS
) -> T:
    """``convert`` applied to the decoded image file at ``path`` (one of ``formats``; None: any
    format Pillow reads), turned as its EXIF orientation says, guarded against what should not be
    decoded.

    Raises ``InputImageError`` for a missing, unreadable, empty, truncated, corrupt or non-image
    file, and for one over ``MAX_PIXELS`` (checked from the header, before decoding) or that
    Pillow takes for a decompression bomb.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise InputImageError(path, "empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=formats) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise InputImageError(
                        path, f"image is {width}x{height}, over the {MAX_PIXELS:,}-pixel limit for an input"
                    )
                if width == 0 or height == 0:
                    raise InputImageError(path, f"image has no pixels ({width}x{height})")
                image.load()
                # as the camera meant it: a phone stores a portrait photo sideways with an EXIF
                # Orientation tag, and every face in it would be found, aligned and pasted sideways
                return convert(ImageOps.exif_transpose(image))
    except InputImageError:
        raise
    except UnidentifiedImageError:
        kind = image_kind(path)
        if kind is not None:
            raise InputImageError(path, f"truncated or corrupt {kind} file") from None
        if formats is None:
            raise InputImageError(path, "not an image file (Pillow cannot identify its format)") from None
        raise InputImageError(path, f"not an image in a supported format ({', '.join(formats)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputImageError(path, f"too many pixels to decode safely ({exc})") from None
    except FileNotFoundError:
        raise InputImageError(path, "no such file") from None
    except IsADirectoryError:
        raise InputImageError(path, "is a folder, not an image file") from None
    except PermissionError:
        raise InputImageError(path, "cannot be read (permission denied)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputImageError(path, f"truncated or corrupt image ({first_line(exc)})") from None


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """An opened image's (width, height) as shown, after its EXIF orientation (5-8 turn it)."""
    width, height = image.size
    turned = image.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8)
    return (height, width) if turned else (width, height)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as float32 RGB [3, H, W] in [0, 1]: PNG, JPEG, BMP or WebP, any mode.

    Raises ``InputImageError`` as ``decode_image`` does.
    """
    return decode_image(path, lambda image: np.ascontiguousarray(_to_rgb(image).transpose(2, 0, 1)))


def upscale_factor(side: int, resolution: int) -> int | None:
    """How much a ``side``-pixel input is enlarged by a ``resolution``-pixel generator, or None when
    ``side`` is not ``resolution`` divided by a power of two (at least 2) and at least 2 pixels."""
    if side < 2 or resolution % side:
        return None
    factor = resolution // side
    return factor if factor >= 2 and factor & (factor - 1) == 0 else None


def valid_sides(resolution: int) -> list[int]:
    """The input sides a ``resolution``-pixel generator accepts, largest first."""
    return [side for side in range(resolution - 1, 1, -1) if upscale_factor(side, resolution)]


def size_advice(resolution: int) -> str:
    """Which inputs a ``resolution``-pixel generator can take, as the end of an error message."""
    sides = "/".join(str(side) for side in valid_sides(resolution))
    return (
        f"a {resolution}x{resolution} model takes aligned square faces of {sides} px; larger squares "
        "are downscaled, and faces are found in photos"
    )


def load_input(path: str | Path, resolution: int) -> np.ndarray:
    """An input image checked for a generator of ``resolution`` pixels: [3, r, r] floats in [0, 1]."""
    image = read_image(path)
    height, width = image.shape[1:]
    if height != width:
        advice = size_advice(resolution)
        raise InputImageError(path, f"image is {width}x{height}; inputs must be square ({advice})")
    if upscale_factor(width, resolution) is None:
        raise InputImageError(path, f"a {width}x{width} input cannot be upsampled: {size_advice(resolution)}")
    return image


def to_pil(image: np.ndarray) -> Image.Image:
    """A float [3, H, W] image in [0, 1] as an 8-bit RGB PIL image (rounded, clipped)."""
    array = np.clip(np.asarray(image, dtype=np.float32).transpose(1, 2, 0) * 255.0 + 0.5, 0, 255)
    return Image.fromarray(array.astype(np.uint8), "RGB")
