"""Binary GraphDef -> the ``modelTopology`` JSON object of a graph model.

The JSON shape is ``MessageToDict``'s (lowerCamelCase names, int64 as strings, enum
names, base64 bytes), which is what tfjs 4.x reads; ``tfjsconv.graph.topology`` makes
it byte-stable (maps sorted), so this module only parses and validates.
"""

from __future__ import annotations

from tfjsconv.errors import ConversionError


def parse_graph_def(data: bytes, where: str):
    """Parse a binary GraphDef; raise ConversionError naming ``where`` if it is not one."""
    from google.protobuf.message import DecodeError

    from tfjsconv import tf_env

    tf_env.import_tensorflow()  # quiet, oneDNN off, no JAX: as the converter
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
            raise ConversionError(f"{where} is not a valid GraphDef: node #{index} has no name or op")
    return graph_def


def graph_def_to_json(graph_def) -> dict:
    """The deterministic ``modelTopology`` dict for ``graph_def``.

    Shared with the graph converter, so migrated and freshly converted models encode
    GraphDefs identically.
    """
    from tfjsconv.graph.topology import message_to_dict

    return message_to_dict(graph_def)


def const_nodes(graph_def) -> list[str]:
    """Names of the top-level Const nodes, in graph order (they need weights)."""
    return [node.name for node in graph_def.node if node.op == "Const"]
