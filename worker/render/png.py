"""A minimal, fast PNG writer for 8-bit grayscale and RGB arrays.

Pillow's PNG encoder tries all five row filters on every row (the libpng heuristic) even at
compress_level 1, and that search is most of its time: on noisy 256x256 scenes it is about 4x
slower than this writer, which applies the "Up" filter to every row with one numpy subtraction
and deflates with zlib's run-length strategy; files come out ~25% larger. The PNG is only the
delivery format (items are hashed from raw pixels), so any reader (Pillow, libpng) decodes it.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILTER_UP = 2
COLOR_TYPES = {1: 0, 3: 2}  # channels -> PNG colour type (grayscale, truecolour)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: np.ndarray, level: int = 1) -> bytes:
    """PNG bytes of an (H, W) or (H, W, 3) uint8 array."""
    channels = 1 if image.ndim == 2 else image.shape[-1]
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or channels not in COLOR_TYPES:
        raise ValueError(f"PNG needs (H, W) or (H, W, 3) uint8, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    flat = np.ascontiguousarray(image).reshape(height, width * channels)
    rows = np.empty((height, width * channels + 1), dtype=np.uint8)
    rows[:, 0] = FILTER_UP
    rows[0, 1:] = flat[0]  # the row above the first row counts as zeros
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])  # wraps mod 256, as PNG wants
    deflate = zlib.compressobj(level, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    data = deflate.compress(rows.data) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPES[channels], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def write_png(path: Path, image: np.ndarray) -> None:
    path.write_bytes(encode_png(image))
