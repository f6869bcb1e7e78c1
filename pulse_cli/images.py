"""Reading low-resolution input images: any common format and mode in, RGB floats out, or a clear error.

``decode_image`` is the guarded decode itself (size limit from the header, decompression bombs,
one-line errors); ``pulse niqe`` reads its files through it too. ``read_image`` reads inputs: a
JPEG photo larger than ``MAX_PIXELS`` is decoded reduced (``draft_scale``), as finding faces needs
no more pixels.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from pulse_cli.errors import first_line

FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "GIF", "TIFF")  # a GIF's first frame, a TIFF's first page
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
MAX_PIXELS = 4096 * 4096  # the most pixels decoded: more is a decompression bomb, or a photo to reduce
MAX_PHOTO_PIXELS = 16384 * 16384  # a JPEG photo's header may announce this many: 200 MP phones fit
DRAFT_SCALES = (1, 2, 4, 8)  # the reductions a JPEG decoder makes as it decodes (its DCT scaling)
# Huffman coding spends a bit or more on every 8x8 block; a JPEG with a byte per 4096 px (a bit per
# 8 blocks) or less announces pixels it does not hold: a decompression bomb
JPEG_PIXELS_PER_BYTE = 4096
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP", b"GIF87a": "GIF", b"GIF89a": "GIF",
    b"II*\x00": "TIFF", b"MM\x00*": "TIFF",
}  # fmt: skip
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


def _to_planes(image: Image.Image) -> np.ndarray:
    """A decoded image as float32 RGB planes [3, H, W] in [0, 1]."""
    return np.ascontiguousarray(_to_rgb(image).transpose(2, 0, 1))


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


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is meant as an image: an image suffix, or an image's magic bytes."""
    return path.suffix.lower() in IMAGE_SUFFIXES or image_kind(path) is not None


def draft_scale(width: int, height: int) -> int:
    """By how much ``read_image`` reduces a JPEG of this size as it decodes it: the least of 1, 2, 4
    and 8 that brings it within ``MAX_PIXELS`` (8 beyond: the size check then refuses it)."""
    fits = (s for s in DRAFT_SCALES if math.ceil(width / s) * math.ceil(height / s) <= MAX_PIXELS)
    return next(fits, DRAFT_SCALES[-1])


def open_image(path: Path, formats: Sequence[str] | None = FORMATS) -> Image.Image:
    """``path`` opened (its header read, nothing decoded). A JPEG is opened by Pillow's JPEG plugin
    itself, without the decompression-bomb check ``Image.open`` makes for a whole decode: a large
    JPEG may be decoded reduced (``decode_image``'s ``draft``), and is checked there."""
    if image_kind(path) == "JPEG" and (formats is None or "JPEG" in formats):
        try:
            return JpegImagePlugin.JpegImageFile(path)
        except SyntaxError as exc:
            raise UnidentifiedImageError(str(exc)) from None
    return Image.open(path, formats=formats)


def _reduce(image: Image.Image, path: Path) -> None:
    """Set a JPEG over ``MAX_PIXELS`` to decode at ``draft_scale``; ``InputImageError`` when its
    header announces more than ``MAX_PHOTO_PIXELS``, or more than its bytes can hold."""
    width, height = image.size
    if width * height <= MAX_PIXELS:
        return
    if width * height > MAX_PHOTO_PIXELS:
        limit = f"over the {MAX_PHOTO_PIXELS:,}-pixel limit for a photo"
        raise InputImageError(path, f"image is {width}x{height}, {limit}")
    size = path.stat().st_size
    if size * JPEG_PIXELS_PER_BYTE <= width * height:
        bomb = f"{size:,} bytes cannot hold a {width}x{height} JPEG: a decompression bomb"
        raise InputImageError(path, bomb)
    scale = draft_scale(width, height)
    image.draft(image.mode, (width // scale, height // scale))


def decode_image(
    path: str | Path,
    convert: Callable[[Image.Image], T],
    formats: Sequence[str] | None = FORMATS,
    *,
    draft: bool = False,
) -> T:
    """``convert`` applied to the decoded image file at ``path`` (one of ``formats``; None: any
    format Pillow reads), turned as its EXIF orientation says, guarded against what should not be
    decoded.

    With ``draft``, a JPEG over ``MAX_PIXELS`` (up to ``MAX_PHOTO_PIXELS`` in its header) is decoded
    at 1/2, 1/4 or 1/8 scale (``draft_scale``, Pillow's ``draft``: the decoder never makes the whole
    image), so ``convert`` gets at most ``MAX_PIXELS`` either way.

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
            with open_image(path, formats) as image:
                if draft and image.format == "JPEG":
                    _reduce(image, path)
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
    """An image file as float32 RGB [3, H, W] in [0, 1]: PNG, JPEG, BMP, WebP, GIF or TIFF, any mode;
    a JPEG over ``MAX_PIXELS`` reduced by ``draft_scale`` (its H and W are then the reduced ones).

    Raises ``InputImageError`` as ``decode_image`` does.
    """
    return decode_image(path, _to_planes, draft=True)


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
