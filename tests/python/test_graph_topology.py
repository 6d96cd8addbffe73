"""The GraphDef -> JSON encoder: same values as protobuf's MessageToDict, stable order.

Also checks the shipped tfjs op list and the op validation error.
"""

from __future__ import annotations

import json
import math

import pytest

from tfjsconv.errors import UnsupportedOpsError
from tfjsconv.graph import ops as op_list
from tfjsconv.graph.topology import message_to_dict


def _graph_def():
    from tensorflow.core.framework import attr_value_pb2, graph_pb2, tensor_pb2, types_pb2

    g = graph_pb2.GraphDef()
    g.versions.producer = 1234
    n = g.node.add(name="c", op="Const")
    n.attr["dtype"].type = types_pb2.DT_INT64
    t = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, int64_val=[-1, 2**40])
    t.tensor_shape.dim.add(size=2)
    n.attr["value"].tensor.CopyFrom(t)
    f = g.node.add(name="f", op="_FusedConv2D", input=["x", "c", "^ctl"], device="/device:CPU:0")
    for key in [
        "zeta",
        "T",
        "fused_ops",
        "epsilon",
        "alpha",
        "nan",
        "inf",
        "ninf",
        "use",
        "num_args",
        "neg0",
    ]:
        f.attr[key].CopyFrom(attr_value_pb2.AttrValue())
    f.attr["zeta"].s = b"\x00\xffbytes"
    f.attr["T"].type = types_pb2.DT_FLOAT
    f.attr["fused_ops"].list.s.extend([b"BiasAdd", b"Relu"])
    f.attr["epsilon"].f = 0.0
    f.attr["alpha"].f = 0.2
    f.attr["nan"].f = float("nan")
    f.attr["inf"].f = float("inf")
    f.attr["ninf"].f = float("-inf")
    f.attr["use"].b = False
    f.attr["num_args"].i = 1
    f.attr["neg0"].f = 1e-30
    s = g.node.add(name="s", op="Placeholder")
    s.attr["shape"].shape.SetInParent()
    g.library.SetInParent()
    return g


def test_same_values_as_message_to_dict():
    from google.protobuf import json_format

    g = _graph_def()
    ours = message_to_dict(g)
    theirs = json_format.MessageToDict(g)
    assert json.loads(json.dumps(ours)) == json.loads(json.dumps(theirs))


def test_encodings_by_hand():
    d = message_to_dict(_graph_def())
    const, fused, ph = d["node"]
    assert const["attr"]["value"]["tensor"]["int64Val"] == ["-1", str(2**40)]
    assert const["attr"]["value"]["tensor"]["tensorShape"] == {"dim": [{"size": "2"}]}
    attr = fused["attr"]
    assert attr["fused_ops"] == {"list": {"s": ["Qmlhc0FkZA==", "UmVsdQ=="]}}
    assert attr["zeta"] == {"s": "AP9ieXRlcw=="}
    assert attr["T"] == {"type": "DT_FLOAT"}
    assert attr["epsilon"] == {"f": 0.0} and attr["use"] == {"b": False}
    assert attr["alpha"] == {"f": 0.2}  # shortest float32 repr, not 0.20000000298...
    assert (
        attr["nan"] == {"f": "NaN"}
        and attr["inf"] == {"f": "Infinity"}
        and attr["ninf"] == {"f": "-Infinity"}
    )
    assert attr["num_args"] == {"i": "1"}
    assert math.isclose(attr["neg0"]["f"], 1e-30)
    assert ph["attr"]["shape"] == {"shape": {}}
    assert d["library"] == {} and d["versions"] == {"producer": 1234}
    assert fused["input"] == ["x", "c", "^ctl"] and fused["device"] == "/device:CPU:0"


def test_attr_keys_sorted_and_fields_in_proto_order():
    d = message_to_dict(_graph_def())
    fused = d["node"][1]
    assert list(fused) == ["name", "op", "input", "device", "attr"]
    assert list(fused["attr"]) == sorted(fused["attr"])
    assert list(d) == ["node", "library", "versions"]


def test_op_list_is_tfjs_4_22():
    data = json.loads(open(op_list._OPS_FILE, encoding="utf-8").read())
    names = [op for ops in data["categories"].values() for op in ops]
    assert len(names) == len(set(names)) == 248
    supported = op_list.supported_ops(strip_debug_ops=False)
    for fused in ("_FusedConv2D", "_FusedMatMul", "FusedDepthwiseConv2dNative", "Prelu", "HashTableV2"):
        assert fused in supported
    assert "Assert" not in supported and "CheckNumerics" not in supported
    assert {"Assert", "CheckNumerics", "Print"} <= op_list.supported_ops(strip_debug_ops=True)


def test_unsupported_ops_sorted_including_functions():
    from tensorflow.core.framework import graph_pb2

    g = graph_pb2.GraphDef()
    for op in ["Zeta", "Relu", "Lgamma", "Zeta"]:
        g.node.add(name=op.lower() + str(len(g.node)), op=op)
    fn = g.library.function.add()
    fn.signature.name = "body"
    fn.node_def.add(name="d", op="MatrixDeterminant")
    with pytest.raises(UnsupportedOpsError) as e:
        op_list.check_ops([g], strip_debug_ops=True, stage="after optimization")
    assert str(e.value) == "Unsupported Ops in the model after optimization: Lgamma, MatrixDeterminant, Zeta"
