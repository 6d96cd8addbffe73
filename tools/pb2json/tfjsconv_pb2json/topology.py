"""Binary GraphDef -> the ``modelTopology`` JSON object of a graph model.

The JSON shape is ``MessageToDict`` with its defaults (lowerCamelCase names, int64
as strings, enum names, base64 bytes), which is what tfjs 4.x reads. Protobuf map
fields (``attr`` and friends) iterate in an unspecified order, so their keys are
sorted here to make the output byte-stable across runs and machines.
"""

from __future__ import annotations

from typing import Any, List

from tfjsconv.errors import ConversionError

# JSON names of the protobuf *map* fields that can occur inside a GraphDef.
_MAP_FIELDS = frozenset({"attr", "ret", "controlRet", "argAttr", "resourceArgUniqueId"})


def parse_graph_def(data: bytes, where: str):
    """Parse a binary GraphDef; raise ConversionError naming ``where`` if it is not one."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.framework import graph_pb2

    graph_def = graph_pb2.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ConversionError(f"{where} is not a binary GraphDef: {exc}") from None
    if not graph_def.node:
        raise ConversionError(f"{where} is not a binary GraphDef: it has no nodes")
    for index, node in enumerate(graph_def.node):
        if not node.name or not node.op:
            raise ConversionError(
                f"{where} is not a valid GraphDef: node #{index} has no name or op"
            )
    return graph_def


def _sort_maps(value: Any, is_map: bool = False) -> Any:
    if isinstance(value, dict):
        keys = sorted(value) if is_map else list(value)
        return {k: _sort_maps(value[k], is_map=(not is_map and k in _MAP_FIELDS)) for k in keys}
    if isinstance(value, list):
        return [_sort_maps(v) for v in value]
    return value


def graph_def_to_json(graph_def) -> dict:
    """The deterministic ``modelTopology`` dict for ``graph_def``."""
    from google.protobuf.json_format import MessageToDict

    return _sort_maps(MessageToDict(graph_def))


def const_nodes(graph_def) -> List[str]:
    """Names of the top-level Const nodes, in graph order (they need weights)."""
    return [node.name for node in graph_def.node if node.op == "Const"]
