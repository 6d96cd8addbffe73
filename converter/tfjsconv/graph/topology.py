"""Protobuf message -> JSON-ready dict, deterministically.

The reference uses ``json_format.MessageToDict``, whose output follows protobuf map
iteration order (``attr`` keys change order between runs).  This walker produces the
same encoding (lowerCamelCase JSON names, int64 as strings, bytes as base64, enums by
name, float32 as the shortest round-tripping decimal, NaN/Infinity as strings, unset
proto3 scalars omitted, set-but-empty messages as ``{}``) but with fields in field
number order and every map sorted by key, so the bytes never depend on the process.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

from google.protobuf import descriptor as _d
from google.protobuf.message import Message

_INT64_TYPES = {
    _d.FieldDescriptor.TYPE_INT64,
    _d.FieldDescriptor.TYPE_UINT64,
    _d.FieldDescriptor.TYPE_SINT64,
    _d.FieldDescriptor.TYPE_FIXED64,
    _d.FieldDescriptor.TYPE_SFIXED64,
}


def _float32_json(value: float) -> Any:
    """Shortest decimal that reads back as the same float32 (like MessageToDict)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0.0:
        return -0.0 if math.copysign(1.0, value) < 0 else 0.0
    target = struct.unpack("<f", struct.pack("<f", value))[0]
    for precision in range(6, 10):
        candidate = float(f"{value:.{precision}g}")
        if struct.unpack("<f", struct.pack("<f", candidate))[0] == target:
            return candidate
    return target


def _double_json(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _scalar(field: _d.FieldDescriptor, value: Any) -> Any:
    ftype = field.type
    if ftype in _INT64_TYPES:
        return str(int(value))
    if ftype == _d.FieldDescriptor.TYPE_FLOAT:
        return _float32_json(value)
    if ftype == _d.FieldDescriptor.TYPE_DOUBLE:
        return _double_json(value)
    if ftype == _d.FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    if ftype == _d.FieldDescriptor.TYPE_ENUM:
        enum_value = field.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value is not None else value
    if ftype == _d.FieldDescriptor.TYPE_MESSAGE:
        return message_to_dict(value)
    return value


def _repeated(field: _d.FieldDescriptor) -> bool:
    # ``label`` is gone in protobuf >= 6 (``is_repeated`` replaces it).
    flag = getattr(field, "is_repeated", None)
    if flag is not None:
        return bool(flag)
    return field.label == _d.FieldDescriptor.LABEL_REPEATED


def _is_map(field: _d.FieldDescriptor) -> bool:
    msg = field.message_type
    return msg is not None and msg.GetOptions().map_entry and _repeated(field)


def message_to_dict(message: Message) -> dict[str, Any]:
    """Encode ``message`` like MessageToDict, with a process-independent key order."""
    out: dict[str, Any] = {}
    fields = sorted(message.ListFields(), key=lambda fv: fv[0].number)
    for field, value in fields:
        name = field.json_name
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            key_field = field.message_type.fields_by_name["key"]
            entries = {}
            for key in sorted(value):
                json_key = str(key).lower() if key_field.type == _d.FieldDescriptor.TYPE_BOOL else str(key)
                entries[json_key] = _scalar(value_field, value[key])
            out[name] = entries
        elif _repeated(field):
            out[name] = [_scalar(field, v) for v in value]
        else:
            out[name] = _scalar(field, value)
    return out
