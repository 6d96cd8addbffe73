"""Questions about a constant's bytes the weight stash asks (uniform or NaN? equal to
another?), shared by in-memory constants and streamed weights."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def _byte_view(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def content_digest(data) -> bytes:
    """Digest of a constant's bytes (a bytes object or a C-contiguous array, not copied)."""
    view: Any = _byte_view(data)
    return hashlib.blake2b(memoryview(view), digest_size=16).digest()


def content_fingerprint(data) -> bytes:
    """A cheap digest of ~64 KiB of a constant's bytes (both ends and a strided sample):
    different fingerprints prove different bytes; equal ones need ``content_digest``."""
    raw = _byte_view(data)
    stride = max(1, raw.size // 65536)
    h = hashlib.blake2b(digest_size=16)
    for part in (raw[:4096], raw[-4096:], raw[::stride]):
        h.update(np.ascontiguousarray(part).tobytes())
    h.update(raw.size.to_bytes(8, "little"))
    return h.digest()


def uniform_or_nan_array(values: np.ndarray) -> bool:
    """True when grappler could use the value: empty, any NaN, or all elements equal."""
    values = values.reshape(-1)
    if values.size == 0:
        return True
    if values.dtype.kind == "f":
        if np.isnan(values.max()):  # max propagates NaN: one pass, no temporary
            return True
    elif values.dtype.kind == "c" and np.isnan(values).any():
        return True
    if (values[:1024] != values[0]).any():
        return False  # the common case, decided without a full comparison
    return bool((values == values[0]).all())
