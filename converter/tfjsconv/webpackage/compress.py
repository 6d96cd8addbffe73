"""Byte-deterministic gzip and brotli encodings of one file's bytes.

Both are pure functions of the input bytes and the library versions: the gzip header is
written here (no file name, mtime 0, OS "unknown"), and brotli runs with a fixed mode,
quality and window. zlib's and brotli's outputs are stable for a given library version;
the Bazel action runs on the hermetic runtime's pinned CPython (its zlib) and the
hash-locked ``brotli`` wheel, so its bytes do not depend on the host.
"""

from __future__ import annotations

import struct
import zlib

# Highest ratio: these files are compressed once and served many times.
GZIP_LEVEL = 9
# Brotli: quality 11 (the maximum) for text (model.json, JS, typings: small, and where
# brotli gains most); quality 5 for weight shards, where 11 costs ~60x the time for a
# few per mille on float data (bench/bench_web_package.py measures both). Window 22
# (4 MiB, brotli's default and the largest every decoder accepts).
BROTLI_TEXT_QUALITY = 11
BROTLI_BINARY_QUALITY = 5
BROTLI_WINDOW = 22

# RFC 1952 member header: magic, CM=deflate, no flags, MTIME=0, XFL=2 (best), OS=255.
_GZIP_HEADER = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x02\xff"


def gzip_bytes(data: bytes) -> bytes:
    """``data`` as a single-member gzip stream with no name and no timestamp."""
    deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    body = deflate.compress(data) + deflate.flush()
    trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return _GZIP_HEADER + body + trailer


def brotli_bytes(data: bytes, binary: bool) -> bytes:
    """``data`` brotli-compressed at the fixed quality for its kind (``binary``: a shard)."""
    import brotli

    quality = BROTLI_BINARY_QUALITY if binary else BROTLI_TEXT_QUALITY
    mode = brotli.MODE_GENERIC if binary else brotli.MODE_TEXT
    return bytes(brotli.compress(data, mode=mode, quality=quality, lgwin=BROTLI_WINDOW))
