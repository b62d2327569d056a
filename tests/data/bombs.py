"""Small files that decode into huge images, built without ever holding the image."""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@lru_cache(maxsize=4)
def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """An all-black 8-bit grey PNG of ``width`` × ``height``: 30000² is 900 MB decoded, under 1 MB on disk."""
    compressor = zlib.compressobj(9)
    rows = (b"\x00" * (width + 1)) * 100  # filter byte 0, then the row's pixels
    stream = [compressor.compress(rows) for _ in range(height // 100)]
    stream.append(compressor.compress((b"\x00" * (width + 1)) * (height % 100)))
    stream.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(stream)) + _chunk(b"IEND", b"")
