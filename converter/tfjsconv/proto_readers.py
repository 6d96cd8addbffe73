"""Reading the untrusted protobuf formats: SavedModel and frozen GraphDef.

Every caller that parses a model file the user handed in (the converters, the scan, the
wizard's detection) goes through here, so the limits are the same everywhere: a file
larger than a protobuf message can be (2 GiB) is refused before it is read, and a parse
failure is a one-line ``ConversionError`` naming the file, never a protobuf traceback.
"""

from __future__ import annotations

import os
from typing import Any

from tfjsconv.errors import ConversionError

# A serialized protobuf message cannot exceed 2 GiB; larger files are not GraphDefs.
MAX_PROTO_BYTES = (1 << 31) - 1
_CHUNK = 1 << 20


def _read_varint(f: Any) -> tuple[int | None, bytes]:
    raw = b""
    value = shift = 0
    while True:
        byte = f.read(1)
        if not byte:
            if raw:
                raise ValueError("truncated varint")
            return None, raw
        raw += byte
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value, raw
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def read_graph_def(path: str) -> Any:
    """Parse a binary GraphDef one top-level field at a time.

    ``ParseFromString(f.read())`` holds the whole file and the parsed message at once:
    two copies of a model near the 2 GiB protobuf limit.  Parsing field by field holds
    the parsed message plus the bytes of one node (GraphDef field 1).
    """
    from tensorflow.core.framework import graph_pb2

    size = os.path.getsize(path)
    if size > MAX_PROTO_BYTES:
        raise ConversionError(f"{path} is {size} bytes, larger than a GraphDef can be (2 GiB)")
    graph_def = graph_pb2.GraphDef()
    try:
        with open(path, "rb") as f:
            while True:
                tag, tag_raw = _read_varint(f)
                if tag is None:
                    break
                wire = tag & 7
                if wire == 2:
                    length, length_raw = _read_varint(f)
                    if length is None or length > size:
                        raise ValueError("bad length")
                    payload = f.read(length)
                    if len(payload) != length:
                        raise ValueError("truncated field")
                    if tag >> 3 == 1:  # a NodeDef: parsed in place, no concatenated copy
                        graph_def.node.add().ParseFromString(payload)
                    else:
                        graph_def.MergeFromString(tag_raw + length_raw + payload)
                    del payload
                elif wire == 0:
                    value, value_raw = _read_varint(f)
                    if value is None:
                        raise ValueError("truncated field")
                    graph_def.MergeFromString(tag_raw + value_raw)
                elif wire in (1, 5):
                    width = 8 if wire == 1 else 4
                    payload = f.read(width)
                    if len(payload) != width:
                        raise ValueError("truncated field")
                    graph_def.MergeFromString(tag_raw + payload)
                else:
                    raise ValueError(f"wire type {wire}")
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError, RuntimeError...
        raise ConversionError(f"cannot read frozen GraphDef {path}: {type(e).__name__}") from None
    return graph_def


def read_saved_model_proto(path: str) -> Any:
    """The SavedModel proto of directory ``path`` (``saved_model.pb`` or ``.pbtxt``)."""
    pb = os.path.join(path, "saved_model.pb")
    pbtxt = os.path.join(path, "saved_model.pbtxt")
    if not os.path.isdir(path) or not (os.path.isfile(pb) or os.path.isfile(pbtxt)):
        raise ConversionError(f"not a SavedModel directory (no saved_model.pb or saved_model.pbtxt): {path}")
    return read_saved_model_file(pb if os.path.isfile(pb) else pbtxt, path)


def read_saved_model_file(path: str, directory: str | None = None) -> Any:
    """Parse one ``saved_model.pb`` / ``saved_model.pbtxt``, refusing files a proto cannot be;
    errors name ``directory`` (default: the file's own)."""
    from tensorflow.core.protobuf import saved_model_pb2

    size = os.path.getsize(path)
    if size > MAX_PROTO_BYTES:
        raise ConversionError(f"{path} is {size} bytes, larger than a SavedModel proto can be (2 GiB)")
    directory = directory if directory is not None else (os.path.dirname(path) or ".")

    proto = saved_model_pb2.SavedModel()
    try:
        if not path.endswith(".pbtxt"):
            with open(path, "rb") as f:
                proto.ParseFromString(f.read())
        else:
            from google.protobuf import text_format

            with open(path, encoding="utf-8") as f:
                text_format.Parse(f.read(), proto)
    except Exception as e:
        raise ConversionError(
            f"corrupt SavedModel: cannot parse {os.path.basename(path)} in {directory} ({type(e).__name__})"
        ) from e
    if not proto.meta_graphs:
        raise ConversionError(f"corrupt SavedModel: {directory} holds no MetaGraph")
    return proto
