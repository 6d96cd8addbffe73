"""Move Const values out of GraphDefs into (name, ndarray) weights, in the reference order.

Each value is decoded into numpy and immediately cleared from its proto, so the
weights exist once in memory (as numpy) instead of once per representation.
"""

from __future__ import annotations

import numpy as np

from tfjsconv.graph.freeze import rename_ref

# TensorProto value fields the reference clears from Const nodes (dtype/shape stay).
_CLEARED_FIELDS = (
    "tensor_content",
    "half_val",
    "float_val",
    "double_val",
    "int_val",
    "string_val",
    "scomplex_val",
    "int64_val",
    "bool_val",
    "resource_handle_val",
    "variant_val",
    "uint32_val",
    "uint64_val",
    "dcomplex_val",
)

Weight = tuple[str, np.ndarray]


def _take_value(node) -> np.ndarray:
    from tensorflow.python.framework import tensor_util

    tensor = node.attr["value"].tensor
    array = tensor_util.MakeNdarray(tensor)
    if array.dtype == object:
        array = np.array([bytes(v) for v in array.reshape(-1)], dtype=object).reshape(array.shape)
    elif not array.flags.c_contiguous:
        # (not np.ascontiguousarray: it turns scalars into shape [1])
        array = np.array(array, order="C")
    for field in _CLEARED_FIELDS:
        tensor.ClearField(field)
    return array


def _take_graph_consts(nodes) -> list[Weight]:
    return [(node.name, _take_value(node)) for node in nodes if node.op == "Const"]


def _rename_function_consts(func) -> list[Weight]:
    """Consts inside a library function, renamed ``<function>/<const>`` (unique names)."""
    prefix = func.signature.name + "/"
    renames = {}
    weights = []
    for node in func.node_def:
        if node.op == "Const":
            new_name = prefix + node.name
            renames[node.name] = new_name
            weights.append((new_name, _take_value(node)))
            node.name = new_name
    if not renames:
        return weights
    for node in func.node_def:
        node.input[:] = [rename_ref(i, renames) for i in node.input]
    for key in sorted(func.ret):
        func.ret[key] = rename_ref(func.ret[key], renames)
    return weights


def extract_weights(graph_def, initializer_graph_def=None) -> list[Weight]:
    """All Const values, in order: graph nodes, library functions, initializer graph."""
    weights = _take_graph_consts(graph_def.node)
    for func in graph_def.library.function:
        weights.extend(_rename_function_consts(func))
    if initializer_graph_def is not None:
        weights.extend(_take_graph_consts(initializer_graph_def.node))
        for func in initializer_graph_def.library.function:
            weights.extend(_rename_function_consts(func))
    return weights
