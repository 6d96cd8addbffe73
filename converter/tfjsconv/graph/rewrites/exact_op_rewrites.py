"""Rewrite ops tfjs 4.22 lacks (or runs otherwise) into ops it runs, where the identity is exact math.

Each entry of ``EXACT_REWRITES`` is one op, the formula, and what real models emit
it (the table in docs/graph-optimizations.md is generated from it); each is tested in the real tfjs runtime
(``tests/python/test_exact_op_rewrites.py``).  The rewritten node keeps its name and
position, so consumers and fetches are untouched; the helper nodes are named after
it (``<name>/erf``...) and appended at the end of the graph.  Unlike the other
rewrites this one edits the GraphDef in place: it runs on the frozen graph, which
holds every weight, and a copy would double the conversion's peak memory.

Only the top-level graph is rewritten (not function bodies of functional control
flow): an op left there is still reported by the op check (a training-mode batch
norm by the executability check).

``FusedBatchNorm*`` is an op tfjs has, but only in inference mode: tfjs normalizes
with the ``mean``/``variance`` inputs whatever ``is_training`` says.  With
``is_training=True`` (tf_keras ``LayerNormalization`` lowers to one, with empty
mean/variance) TensorFlow uses the batch's own statistics instead; when only output 0
(``y``) is read, that is the formula below, TensorFlow's CPU kernel step by step
(biased variance of the centered input; ``epsilon`` as stored, ``fused_batch_norm``
already raised it to its minimum).  ``Cumsum``/``Cumprod`` with a negative axis and a
bool ``ReverseV2`` (on tfjs-backend-wasm) are ops tfjs has but computes wrongly: the
rewrite feeds them what their kernels handle.  These last two are not rewritten inside
function bodies (``--control_flow_v2``) and not refused there either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from tensorflow.core.framework import graph_pb2, node_def_pb2

from tfjsconv.graph.graph_utils import (
    const_node,
    control_inputs,
    copy_node,
    data_format,
    data_inputs,
    new_node,
    node_name,
    numpy_dtype,
    output_index,
    unique_name,
)


class ExactRewrite(NamedTuple):
    op: str
    formula: str
    seen_in: str
    variants: tuple[str, ...] = ()  # other op names rewritten the same way
    when: str = ""  # the attrs / uses the rewrite needs ("" = always)


EXACT_REWRITES = (
    ExactRewrite("Erfc", "Erfc(x) = 1 - Erf(x)", 'Keras 3 `activation="gelu"` (`keras.activations.gelu`)'),
    ExactRewrite("Softsign", "Softsign(x) = x / (1 + Abs(x))", '`activation="softsign"` (Keras 2 and 3)'),
    ExactRewrite(
        "FusedBatchNormV3",
        "c = x - Mean(x); y = c * (Rsqrt(Mean(Square(c)) + epsilon) * scale) + offset",
        "tf_keras `LayerNormalization` (graph model); means over every axis but the channel axis",
        variants=("FusedBatchNorm", "FusedBatchNormV2"),
        when="is_training=True, float32, only `y` read",
    ),
    ExactRewrite(
        "Cumsum",
        "Cumsum(x, FloorMod(axis, Rank(x))) (grappler folds it to a constant axis >= 0)",
        'Keras 3 `activation="sparsemax"`: tfjs\'s cumsum/cumprod kernels mis-handle a negative axis',
        variants=("Cumprod",),
        when="int32 axis",
    ),
    ExactRewrite(
        "ReverseV2",
        "Cast(ReverseV2(Cast(x, int32), axis), bool)",
        "masked Keras 2 `Bidirectional` RNNs (the reversed mask): tfjs-backend-wasm 4.22 reverses bool "
        "tensors wrongly (garbage or a crash)",
        when="bool x",
    ),
    ExactRewrite(
        "Einsum",
        "Transpose(Reshape(BatchMatMulV2(Reshape(Transpose(a)), Reshape(Transpose(b))), shape of the result)): "
        "batch, free and contracted indices grouped, shapes read at run time (one operand: Sum, Transpose)",
        "KerasHub backbones and Keras `MultiHeadAttention`/`EinsumDense`: tfjs-backend-wasm 4.22 has no Einsum "
        "kernel (cpu and webgl have one)",
        when="float32, 1 or 2 operands, no `...`, no index twice in one operand",
    ),
)


def rewrite_table_markdown() -> str:
    """The docs' table of rewrites (one home: ``EXACT_REWRITES``)."""
    rows = ["| op tfjs 4.22 lacks (or runs otherwise) | rewritten as | seen in |", "|---|---|---|"]
    for r in EXACT_REWRITES:
        op = ", ".join(f"`{name}`" for name in (r.op, *r.variants)) + (f" ({r.when})" if r.when else "")
        rows.append(f"| {op} | `{r.formula}` | {r.seen_in} |")
    return "\n".join(rows)


def _helper(name: str, op: str, inputs: list[str], like: node_def_pb2.NodeDef) -> node_def_pb2.NodeDef:
    node = new_node(name, op, like.device)
    node.input.extend(inputs)
    node.attr["T"].CopyFrom(like.attr["T"])
    return node


def _one(name: str, like: node_def_pb2.NodeDef, x: str) -> node_def_pb2.NodeDef:
    """Scalar 1 of the node's dtype, in ``x``'s frame (a control input on x's node)."""
    dtype_enum = like.attr["T"].type
    one = const_node(name, np.array(1, dtype=numpy_dtype(dtype_enum)), dtype_enum)
    one.input.append("^" + node_name(x))
    return one


def _erfc(node: node_def_pb2.NodeDef, taken: set[str]) -> list[node_def_pb2.NodeDef]:
    (x,) = data_inputs(node)
    one = _one(unique_name(f"{node.name}/one", taken), node, x)
    erf = _helper(unique_name(f"{node.name}/erf", taken), "Erf", [x, *control_inputs(node)], node)
    out = _helper(node.name, "Sub", [one.name, erf.name], node)
    return [one, erf, out]


def _softsign(node: node_def_pb2.NodeDef, taken: set[str]) -> list[node_def_pb2.NodeDef]:
    (x,) = data_inputs(node)
    one = _one(unique_name(f"{node.name}/one", taken), node, x)
    abs_x = _helper(unique_name(f"{node.name}/abs", taken), "Abs", [x, *control_inputs(node)], node)
    denominator = _helper(
        unique_name(f"{node.name}/denominator", taken), "AddV2", [one.name, abs_x.name], node
    )
    out = _helper(node.name, "RealDiv", [x, denominator.name], node)
    return [one, abs_x, denominator, out]


BATCH_NORM_OPS = ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
# data_format -> (reduced axes, shape that puts a [C] vector on the channel axis or None).
_BATCH_NORM_LAYOUTS: dict[bytes, tuple[Sequence[int], Sequence[int] | None]] = {
    b"NHWC": ((0, 1, 2), None),
    b"NDHWC": ((0, 1, 2, 3), None),
    b"NCHW": ((0, 2, 3), (-1, 1, 1)),
    b"NCDHW": ((0, 2, 3, 4), (-1, 1, 1, 1)),
}
_DEFAULT_BATCH_NORM_EPSILON = 0.0001  # the op's default (absent when default attrs are stripped)


def is_training_batch_norm(node: node_def_pb2.NodeDef) -> bool:
    """A ``FusedBatchNorm*`` that normalizes with batch statistics (the op's default)."""
    return node.op in BATCH_NORM_OPS and (node.attr["is_training"].b if "is_training" in node.attr else True)


def _float32(node: node_def_pb2.NodeDef, attr: str) -> bool:
    from tensorflow.core.framework import types_pb2

    return attr not in node.attr or node.attr[attr].type == types_pb2.DT_FLOAT


def _batch_norm_applies(node: node_def_pb2.NodeDef, ports: set[int]) -> bool:
    from tensorflow.core.framework import types_pb2

    return (
        is_training_batch_norm(node)
        and len(data_inputs(node)) == 5
        and ports <= {0}
        and node.attr["T"].type == types_pb2.DT_FLOAT
        and _float32(node, "U")
        and data_format(node) in _BATCH_NORM_LAYOUTS
    )


def _int32_const(name: str, values: Sequence[int] | int, x: str) -> node_def_pb2.NodeDef:
    from tensorflow.core.framework import types_pb2

    node = const_node(name, np.array(values, dtype=np.int32), types_pb2.DT_INT32)
    if isinstance(values, int):  # const_node's array is at least 1-d
        del node.attr["value"].tensor.tensor_shape.dim[:]
    node.input.append("^" + node_name(x))
    return node


class _Emitter:
    """The helper nodes of one rewritten node, named after it, in the order made."""

    def __init__(self, node: node_def_pb2.NodeDef, taken: set[str]) -> None:
        self.node, self.taken = node, taken
        self.nodes: list[node_def_pb2.NodeDef] = []
        self.anchor = data_inputs(node)[0]  # consts take a control input on it: the same frame

    def const(self, suffix: str, array: np.ndarray, dtype_enum: int) -> str:
        self.nodes.append(
            const_node(unique_name(f"{self.node.name}/{suffix}", self.taken), array, dtype_enum)
        )
        self.nodes[-1].input.append("^" + node_name(self.anchor))
        return self.nodes[-1].name

    def int32s(self, suffix: str, values: Sequence[int] | int) -> str:
        """An int32 const: a vector, or a scalar for an ``int``."""
        self.nodes.append(
            _int32_const(unique_name(f"{self.node.name}/{suffix}", self.taken), values, self.anchor)
        )
        return self.nodes[-1].name

    def op(
        self,
        suffix: str,
        op: str,
        inputs: list[str],
        t: str = "node",
        int32_attrs: Sequence[str] = (),
        **attrs: bool | int,
    ) -> str:
        """A helper named ``<node>/<suffix>`` (the node's own name for ``suffix=""``); its
        ``T`` is the node's (``t="node"``), int32 (``"int32"``) or absent (``""``)."""
        from tensorflow.core.framework import types_pb2

        name = unique_name(f"{self.node.name}/{suffix}", self.taken) if suffix else self.node.name
        node = new_node(name, op, self.node.device)
        node.input.extend(inputs)
        if t:
            node.attr["T"].type = self.node.attr["T"].type if t == "node" else types_pb2.DT_INT32
        for key in int32_attrs:
            node.attr[key].type = types_pb2.DT_INT32
        for key, value in attrs.items():
            if isinstance(value, bool):
                node.attr[key].b = value
            else:
                node.attr[key].i = value
        self.nodes.append(node)
        return name


def _batch_norm(node: node_def_pb2.NodeDef, taken: set[str]) -> list[node_def_pb2.NodeDef]:
    from tensorflow.core.framework import types_pb2

    x, scale, offset, _mean_in, _variance_in = data_inputs(node)
    axes, channel_shape = _BATCH_NORM_LAYOUTS[data_format(node)]
    epsilon = node.attr["epsilon"].f if "epsilon" in node.attr else _DEFAULT_BATCH_NORM_EPSILON
    em = _Emitter(node, taken)
    reduce = em.int32s("axes", axes)
    mean = em.op("mean", "Mean", [x, reduce, *control_inputs(node)], int32_attrs=["Tidx"], keep_dims=True)
    centered = em.op("centered", "Sub", [x, mean])
    square = em.op("square", "Square", [centered])
    variance = em.op("variance", "Mean", [square, reduce], int32_attrs=["Tidx"], keep_dims=True)
    eps = em.const("epsilon", np.array(epsilon, dtype=np.float32), types_pb2.DT_FLOAT)
    rsqrt = em.op("rsqrt", "Rsqrt", [em.op("add_epsilon", "AddV2", [variance, eps])])
    if channel_shape is not None:  # channels first: [C] -> [C, 1, 1(, 1)]
        shape = em.int32s("channel_shape", channel_shape)
        scale = em.op("scale", "Reshape", [scale, shape], int32_attrs=["Tshape"])
        offset = em.op("offset", "Reshape", [offset, shape], int32_attrs=["Tshape"])
    factor = em.op("factor", "Mul", [rsqrt, scale])
    scaled = em.op("scaled", "Mul", [centered, factor])
    em.op("", "AddV2", [scaled, offset])
    return em.nodes


def _cumulative_applies(node: node_def_pb2.NodeDef, ports: set[int]) -> bool:
    from tensorflow.core.framework import types_pb2

    return (
        len(data_inputs(node)) == 2
        and "T" in node.attr
        and ("Tidx" not in node.attr or node.attr["Tidx"].type == types_pb2.DT_INT32)
    )


def _cumulative(node: node_def_pb2.NodeDef, taken: set[str]) -> list[node_def_pb2.NodeDef]:
    """tfjs 4.22's Cumsum/Cumprod kernels transpose by ``[..., axis]`` without wrapping
    a negative axis (TF allows ``-rank <= axis < rank``): give them ``axis mod rank``."""
    from tensorflow.core.framework import types_pb2

    x, axis = data_inputs(node)
    rank = _helper(unique_name(f"{node.name}/rank", taken), "Rank", [x], node)
    wrapped = new_node(unique_name(f"{node.name}/axis", taken), "FloorMod", node.device)
    wrapped.input.extend([axis, rank.name])
    wrapped.attr["T"].type = types_pb2.DT_INT32
    out = copy_node(node)
    del out.input[:]
    out.input.extend([x, wrapped.name, *control_inputs(node)])
    return [rank, wrapped, out]


def _bool_reverse_applies(node: node_def_pb2.NodeDef, ports: set[int]) -> bool:
    from tensorflow.core.framework import types_pb2

    return len(data_inputs(node)) == 2 and node.attr["T"].type == types_pb2.DT_BOOL


def _cast(name: str, x: str, src: int, dst: int, device: str) -> node_def_pb2.NodeDef:
    node = new_node(name, "Cast", device)
    node.input.append(x)
    node.attr["SrcT"].type = src
    node.attr["DstT"].type = dst
    node.attr["Truncate"].b = False
    return node


def _bool_reverse(node: node_def_pb2.NodeDef, taken: set[str]) -> list[node_def_pb2.NodeDef]:
    """tfjs-backend-wasm 4.22's ReverseV2 kernel mis-reads bool (1-byte) tensors; int32 works."""
    from tensorflow.core.framework import types_pb2

    x, axis = data_inputs(node)
    as_int = _cast(
        unique_name(f"{node.name}/to_int32", taken), x, types_pb2.DT_BOOL, types_pb2.DT_INT32, node.device
    )
    reverse = copy_node(node)
    reverse.name = unique_name(f"{node.name}/reverse", taken)
    del reverse.input[:]
    reverse.input.extend([as_int.name, axis, *control_inputs(node)])
    reverse.attr["T"].type = types_pb2.DT_INT32
    out = _cast(node.name, reverse.name, types_pb2.DT_INT32, types_pb2.DT_BOOL, node.device)
    return [as_int, reverse, out]


def _einsum_parts(node: node_def_pb2.NodeDef) -> tuple[list[str], str] | None:
    """(operand index strings, output index string) of an Einsum the rewrite handles."""
    equation = node.attr["equation"].s.decode("ascii", "replace") if "equation" in node.attr else ""
    if "->" not in equation or "." in equation or " " in equation:
        return None
    lhs, out = equation.split("->")
    specs = lhs.split(",")
    letters = [*specs, out]
    if len(specs) != len(data_inputs(node)) or len(specs) not in (1, 2):
        return None
    if not all(spec.isalpha() or spec == "" for spec in letters):
        return None
    if any(len(set(spec)) != len(spec) for spec in letters) or not set(out) <= set("".join(specs)):
        return None
    return specs, out


def _einsum_applies(node: node_def_pb2.NodeDef, ports: set[int]) -> bool:
    from tensorflow.core.framework import types_pb2

    return node.attr["T"].type == types_pb2.DT_FLOAT and _einsum_parts(node) is not None


def _einsum(node: node_def_pb2.NodeDef, taken: set[str]) -> list[node_def_pb2.NodeDef]:
    """The indices of ``a`` and ``b`` in groups -- batch (in both and the output),
    contracted (in both, not the output), free (one operand's, in the output) -- make a
    batched matrix product ``[batch, free_a, contracted] x [batch, contracted, free_b]``
    of the operands transposed and reshaped to that order; the product is reshaped back and
    transposed to the output's order. An index of one operand only and not in the output
    is summed away first. Shapes are read with ``Shape`` at run time, as Keras's own
    ``tensordot`` does: batch and sequence dimensions may be unknown."""
    parts = _einsum_parts(node)
    assert parts is not None
    specs, out = parts
    em = _Emitter(node, taken)
    operands = []
    for i, (x, spec) in enumerate(zip(data_inputs(node), specs, strict=True)):
        elsewhere = set(out).union(*(set(other) for j, other in enumerate(specs) if j != i))
        summed = [k for k, letter in enumerate(spec) if letter not in elsewhere]
        if summed:
            axes = em.int32s(f"sum{i}/axes", summed)
            x = em.op(f"sum{i}", "Sum", [x, axes], int32_attrs=["Tidx"], keep_dims=False)
            spec = "".join(letter for letter in spec if letter in elsewhere)
        operands.append((x, spec))

    def transposed(suffix: str, x: str, spec: str, order: str, final: bool = False) -> str:
        """``x`` (indices ``spec``) in ``order``; ``final``: the node itself, with its control inputs."""
        perm = [spec.index(letter) for letter in order]
        extra = control_inputs(node) if final else []
        if perm == list(range(len(perm))):
            return em.op("", "Identity", [x, *extra]) if final else x
        perm_const = em.int32s(f"{suffix}/perm", perm)
        return em.op("" if final else suffix, "Transpose", [x, perm_const, *extra], int32_attrs=["Tperm"])

    if len(operands) == 1:
        transposed("transpose", *operands[0], out, final=True)
        return em.nodes

    (a, sa), (b, sb) = operands
    batch = "".join(c for c in sa if c in sb and c in out)
    contracted = "".join(c for c in sa if c in sb and c not in out)
    free_a = "".join(c for c in sa if c not in sb)
    free_b = "".join(c for c in sb if c not in sa)
    nb, na, nc, nf = len(batch), len(free_a), len(contracted), len(free_b)
    a = transposed("a/transpose", a, sa, batch + free_a + contracted)
    b = transposed("b/transpose", b, sb, batch + contracted + free_b)
    shape_a = em.op("a/shape", "Shape", [a], int32_attrs=["out_type"])
    shape_b = em.op("b/shape", "Shape", [b], int32_attrs=["out_type"])

    def dims(suffix: str, shape: str, start: int, count: int) -> str:
        """``shape[start:start + count]``."""
        indices = em.int32s(f"{suffix}/indices", list(range(start, start + count)))
        axis = em.int32s(f"{suffix}/axis", 0)
        return em.op(
            suffix,
            "GatherV2",
            [shape, indices, axis],
            t="",
            int32_attrs=["Tparams", "Tindices", "Taxis"],
            batch_dims=0,
        )

    def merged(suffix: str, shape: str, start: int, count: int) -> str:
        """``[prod(shape[start:start + count])]``."""
        if count == 0:
            return em.int32s(suffix, [1])
        if count == 1:
            return dims(suffix, shape, start, 1)
        axis = em.int32s(f"{suffix}/prod_axis", [0])
        return em.op(
            f"{suffix}/prod",
            "Prod",
            [dims(suffix, shape, start, count), axis],
            t="int32",
            int32_attrs=["Tidx"],
            keep_dims=True,
        )

    def reshaped(suffix: str, x: str, pieces: list[str]) -> str:
        if len(pieces) < 2:  # ConcatV2 takes 2 or more
            shape = pieces[0] if pieces else em.int32s(f"{suffix}/shape", [])
        else:
            axis = em.int32s(f"{suffix}/shape/axis", 0)
            shape = em.op(
                f"{suffix}/shape", "ConcatV2", [*pieces, axis], t="int32", int32_attrs=["Tidx"], N=len(pieces)
            )
        return em.op(suffix, "Reshape", [x, shape], int32_attrs=["Tshape"])

    lead_a = [dims("a/batch", shape_a, 0, nb)] if nb else []
    lead_b = [dims("b/batch", shape_b, 0, nb)] if nb else []
    if na != 1 or nc != 1:
        rows, inner = merged("a/rows", shape_a, nb, na), merged("a/inner", shape_a, nb + na, nc)
        a = reshaped("a/matrix", a, [*lead_a, rows, inner])
    if nc != 1 or nf != 1:
        inner, columns = merged("b/inner", shape_b, nb, nc), merged("b/columns", shape_b, nb + nc, nf)
        b = reshaped("b/matrix", b, [*lead_b, inner, columns])
    product = em.op("product", "BatchMatMulV2", [a, b], adj_x=False, adj_y=False)
    if na != 1 or nf != 1:
        kept = [dims("a/kept", shape_a, 0, nb + na)] if nb + na else []
        kept += [dims("b/kept", shape_b, nb + nc, nf)] if nf else []
        product = reshaped("unmatrix", product, kept)
    transposed("transpose", product, batch + free_a + free_b, out, final=True)
    return em.nodes


def _unary_applies(node: node_def_pb2.NodeDef, ports: set[int]) -> bool:
    return len(data_inputs(node)) == 1 and "T" in node.attr


Builder = Callable[["node_def_pb2.NodeDef", set[str]], list["node_def_pb2.NodeDef"]]
Applies = Callable[["node_def_pb2.NodeDef", set[int]], bool]
_BUILDERS: dict[str, tuple[Applies, Builder]] = {
    "Erfc": (_unary_applies, _erfc),
    "Softsign": (_unary_applies, _softsign),
    **{op: (_batch_norm_applies, _batch_norm) for op in BATCH_NORM_OPS},
    "Cumsum": (_cumulative_applies, _cumulative),
    "Cumprod": (_cumulative_applies, _cumulative),
    "ReverseV2": (_bool_reverse_applies, _bool_reverse),
    "Einsum": (_einsum_applies, _einsum),
}
assert set(_BUILDERS) == {op for r in EXACT_REWRITES for op in (r.op, *r.variants)}


def _read_ports(graph_def: graph_pb2.GraphDef) -> dict[str, set[int]]:
    """Node name -> output ports any data input reads."""
    ports: dict[str, set[int]] = {}
    for node in graph_def.node:
        for ref in data_inputs(node):
            ports.setdefault(node_name(ref), set()).add(output_index(ref))
    return ports


def exact_op_rewrites(graph_def: graph_pb2.GraphDef) -> list[str]:
    """Replace, in place, every op of ``EXACT_REWRITES`` by its formula; returns the
    names of the rewritten nodes (in graph order)."""
    candidates = [node for node in graph_def.node if node.op in _BUILDERS]
    if not candidates:
        return []
    ports = _read_ports(graph_def)
    matches = [node for node in candidates if _BUILDERS[node.op][0](node, ports.get(node.name, set()))]
    if not matches:
        return []
    taken: set[str] = {node.name for node in graph_def.node}
    helpers: list[node_def_pb2.NodeDef] = []
    for node in matches:
        *extra, out = _BUILDERS[node.op][1](node, taken)
        node.CopyFrom(out)
        helpers.extend(extra)
    graph_def.node.extend(helpers)
    return [node.name for node in matches]
