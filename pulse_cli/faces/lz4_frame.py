"""Decompressing LZ4 frames (the format ``lz4.frame`` and joblib's ``.lz4`` files use) in pure Python.

Only the MTCNN weight files need it, once, when they are converted into the cache; their bytes are
pinned by SHA-256 before they get here, so a small decoder beats a compiled dependency. Every length
and offset is checked, so a damaged stream raises ``LZ4FrameError`` instead of producing garbage.
"""

from __future__ import annotations

import struct

MAGIC = b"\x04\x22\x4d\x18"
SKIPPABLE_MAGIC_MASK = 0xFFFFFFF0
SKIPPABLE_MAGIC = 0x184D2A50
MIN_MATCH = 4
UNCOMPRESSED_BIT = 0x80000000
BLOCK_MAX_BYTES = {4: 1 << 16, 5: 1 << 18, 6: 1 << 20, 7: 1 << 22}


class LZ4FrameError(ValueError):
    """Bytes that are not a well-formed LZ4 frame."""


def _length(data: bytes | bytearray, pos: int, base: int) -> tuple[int, int]:
    """An LZ4 length: ``base`` (15 means more follow), then bytes added while they are 255."""
    if base != 15:
        return base, pos
    total = base
    while True:
        if pos >= len(data):
            raise LZ4FrameError("block ends inside a length")
        byte = data[pos]
        pos += 1
        total += byte
        if byte != 255:
            return total, pos


def decompress_block(block: bytes | bytearray, out: bytearray, limit: int) -> None:
    """Append the decompressed ``block`` to ``out``; matches may reach back into earlier blocks
    already in ``out`` (linked blocks), never further; at most ``limit`` bytes are appended."""
    end = len(out) + limit
    pos, size = 0, len(block)
    while pos < size:
        token = block[pos]
        literals, pos = _length(block, pos + 1, token >> 4)
        if pos + literals > size or len(out) + literals > end:
            raise LZ4FrameError("literals run past the end of the block")
        out += block[pos : pos + literals]
        pos += literals
        if pos == size:  # the last sequence has literals only
            return
        if pos + 2 > size:
            raise LZ4FrameError("block ends inside a match offset")
        offset = block[pos] | block[pos + 1] << 8
        length, pos = _length(block, pos + 2, token & 15)
        length += MIN_MATCH
        start = len(out) - offset
        if offset == 0 or start < 0 or len(out) + length > end:
            raise LZ4FrameError(f"match offset {offset} or length {length} is out of range")
        if offset >= length:
            out += out[start : start + length]
        else:  # an overlapping match repeats the last ``offset`` bytes
            pattern = out[start:]
            out += (pattern * (length // offset + 1))[:length]


def _word(data: bytes, pos: int) -> int:
    return struct.unpack_from("<I", data, pos)[0]


def decompress_frame(data: bytes) -> bytes:
    """The content of one LZ4 frame (skippable frames before it are skipped)."""
    pos = 0
    while len(data) >= pos + 8 and _word(data, pos) & SKIPPABLE_MAGIC_MASK == SKIPPABLE_MAGIC:
        pos += 8 + struct.unpack_from("<I", data, pos + 4)[0]
    if data[pos : pos + 4] != MAGIC:
        raise LZ4FrameError("not an LZ4 frame (bad magic number)")
    if len(data) < pos + 7:
        raise LZ4FrameError("frame header is truncated")
    header = pos
    flags, block_descriptor = data[pos + 4], data[pos + 5]
    if flags >> 6 != 1:
        raise LZ4FrameError(f"unsupported LZ4 frame version {flags >> 6}")
    block_max = BLOCK_MAX_BYTES.get(block_descriptor >> 4 & 7)
    if block_max is None:
        raise LZ4FrameError(f"invalid block size code {block_descriptor >> 4 & 7}")
    has_block_checksum, has_content_size, has_dictionary = flags & 0x10, flags & 0x08, flags & 0x01
    if has_dictionary:
        raise LZ4FrameError("frames compressed with a dictionary are not supported")
    pos += 6 + (8 if has_content_size else 0) + 1  # the descriptor, then its checksum byte
    out = bytearray()
    while True:
        if pos + 4 > len(data):
            raise LZ4FrameError("frame is truncated (no end mark)")
        word = _word(data, pos)
        pos += 4
        if word == 0:
            break
        size = word & ~UNCOMPRESSED_BIT
        if size > block_max or pos + size > len(data):
            raise LZ4FrameError(f"block of {size} bytes is larger than the frame allows")
        block = data[pos : pos + size]
        pos += size + (4 if has_block_checksum else 0)
        if word & UNCOMPRESSED_BIT:
            out += block
        else:
            decompress_block(block, out, block_max)
    if has_content_size:
        (expected,) = struct.unpack_from("<Q", data, header + 6)
        if expected != len(out):
            raise LZ4FrameError(f"frame holds {len(out)} bytes, its header says {expected}")
    return bytes(out)
