"""Upload totals from Bazel's `--experimental_remote_grpc_log` file.

The log is a stream of varint-length-delimited `remote_logging.LogEntry` messages
(src/main/protobuf/remote_execution_log.proto in Bazel's sources). Only the few fields
needed to count uploads are decoded, by hand, so no protobuf package is needed:

    LogEntry:        3 method_name (string), 4 details (RpcCallDetails)
    RpcCallDetails:  6 write (WriteDetails)
    WriteDetails:    1 resource_names (repeated string), 3 bytes_sent (int64)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_BLOB = re.compile(r"blobs/([0-9a-f]{64})/(\d+)")


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, object]]:
    """(field number, int or bytes) of one message; skips fixed-width fields."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(buf, i)
            yield num, val
        elif wire == 2:
            size, i = _varint(buf, i)
            yield num, buf[i : i + size]
            i += size
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def entries(data: bytes) -> Iterator[bytes]:
    i = 0
    while i < len(data):
        size, i = _varint(data, i)
        yield data[i : i + size]
        i += size


@dataclass
class Uploads:
    """What the client sent to the CAS: calls, bytes on the wire, distinct blobs."""

    calls: dict[str, int] = field(default_factory=dict)
    write_calls: int = 0
    bytes_sent: int = 0
    blobs: set[tuple[str, int]] = field(default_factory=set)

    @property
    def blob_bytes(self) -> int:
        return sum(size for _, size in self.blobs)


def uploads(path: Path) -> Uploads:
    out = Uploads()
    data = path.read_bytes() if path.exists() else b""
    for entry in entries(data):
        method = ""
        details = b""
        for num, val in fields(entry):
            if num == 3 and isinstance(val, bytes):
                method = val.decode()
            elif num == 4 and isinstance(val, bytes):
                details = val
        out.calls[method] = out.calls.get(method, 0) + 1
        for num, val in fields(details):
            if num != 6 or not isinstance(val, bytes):
                continue
            out.write_calls += 1
            for wnum, wval in fields(val):
                if wnum == 3 and isinstance(wval, int):
                    out.bytes_sent += wval
                elif wnum == 1 and isinstance(wval, bytes):
                    m = _BLOB.search(wval.decode())
                    if m:
                        out.blobs.add((m.group(1), int(m.group(2))))
        if method.endswith("BatchUpdateBlobs"):
            out.write_calls += 1  # small blobs batched (counted as calls; bytes not decoded)
    return out
