"""Image files made byte by byte for tests: headers that announce more than the file holds."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces ``width``×``height`` RGB pixels, with (almost) no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + pixels


def jpeg_declaring(width: int, height: int) -> bytes:
    """A JPEG of a few hundred bytes whose frame header (SOF0) announces ``width``×``height`` pixels:
    an 8×8 image's file with the size patched."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.index(b"\xff\xc0")  # marker, length (2), precision (1), then height and width
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)
