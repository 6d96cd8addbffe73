"""The pre-load scanner on hand-built protobufs (no TensorFlow graph is built).

The end-to-end refusals of real hostile models live in test_bad_inputs.py (HOSTILE_ROWS);
these tests pin the rules themselves: what the allowlist is made of, how path inputs
are traced, the size and call-graph bounds, and the streamed GraphDef reader.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "converter"))

from tfjsconv import datafiles, proto_readers  # noqa: E402
from tfjsconv.errors import ConversionError  # noqa: E402
from tfjsconv.graph import scan, scan_graph  # noqa: E402

tf = pytest.importorskip("tensorflow")
from tensorflow.core.framework import graph_pb2  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2  # noqa: E402


def _graph(*nodes, functions=()) -> graph_pb2.GraphDef:
    g = graph_pb2.GraphDef()
    for name, op, inputs in nodes:
        g.node.add(name=name, op=op, input=list(inputs))
    for fname, args, fnodes in functions:
        f = g.library.function.add()
        f.signature.name = fname
        for a in args:
            f.signature.input_arg.add(name=a, type=tf.string.as_datatype_enum)
        for name, op, inputs in fnodes:
            f.node_def.add(name=name, op=op, input=list(inputs))
    return g


def _string_const(node, value: str) -> None:
    node.attr["value"].tensor.dtype = tf.string.as_datatype_enum
    node.attr["value"].tensor.string_val.append(value.encode())


def test_compute_ops_match_the_installed_tensorflow_registry():
    """compute_ops.json is derive_compute_ops() of TF's registry (regenerate on a TF bump)."""
    data = datafiles.load_json("compute_ops.json")
    if data["tensorflow_version"] != tf.__version__:
        pytest.skip(f"compute_ops.json is for TensorFlow {data['tensorflow_version']}")
    assert data["ops"] == scan.derive_compute_ops(scan.registered_op_defs())


@pytest.mark.parametrize(
    "op",
    [
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "DeleteFile",
        "PrintV2",
        "PyFunc",
        "EagerPyFunc",
        "PyFuncStateless",
        "TFRecordDataset",
        "IteratorGetNext",
        "ImmutableConst",
        "DecodeProtoV2",
        "DebugIdentityV2",
        "Save",
        "SaveV2",
        "MergeV2Checkpoints",
        "SimpleMLLoadModelFromPathWithHandle",
        "DecodePng",
        "WriteSummary",
        "QueueDequeueV2",
        "_Send",
        "RestoreSlice",
    ],
)
def test_dangerous_ops_are_not_allowed(op):
    assert op not in scan.allowlist().ops


def test_allowlist_covers_the_tfjs_runtime_and_loading():
    allowed = scan.allowlist()
    tfjs = datafiles.load_json("tfjs_ops.json")
    runtime = {op for ops in tfjs["categories"].values() for op in ops} - {
        "SimpleMLCreateModelResource",
        "SimpleMLInferenceOpWithHandle",
        "SimpleMLLoadModelFromPathWithHandle",
    }
    assert runtime <= allowed.ops
    assert {
        "RestoreV2",
        "VarHandleOp",
        "AssignVariableOp",
        "InitializeTableFromTextFileV2",
        "StatefulPartitionedCall",
        "Lgamma",
    } <= allowed.ops
    assert "SaveV2" in allowed.save_only and "SaveV2" not in allowed.ops


def test_write_file_in_a_function_is_named_with_the_function():
    g = _graph(
        ("x", "Placeholder", []), functions=[("init_fn", [], [("w", "WriteFile", []), ("r", "ReadFile", [])])]
    )
    with pytest.raises(scan.UnsafeModelError, match=r"ReadFile \(in init_fn\); WriteFile \(in init_fn\)"):
        scan.scan_graph_def(g, "m.pb", allow_unsafe=False)


def test_allow_unsafe_warns_in_one_line(caplog):
    g = _graph(("w", "WriteFile", []))
    with caplog.at_level("WARNING", logger="tfjsconv"):
        scan.scan_graph_def(g, "m.pb", allow_unsafe=True)
    assert [r.getMessage() for r in caplog.records] == [
        "--allow_unsafe_deserialization: not checking the ops of m.pb"
    ]


def test_save_ops_only_on_the_save_path():
    meta = meta_graph_pb2.MetaGraphDef()
    meta.graph_def.CopyFrom(
        _graph(
            ("saver_filename", "Placeholder", []),
            ("save", "StatefulPartitionedCall", ["saver_filename"]),
            ("init", "StatefulPartitionedCall", []),
            functions=[
                ("save_fn", ["prefix"], [("s", "SaveV2", ["prefix"])]),
                ("init_fn", [], [("s", "SaveV2", [])]),
            ],
        )
    )
    meta.graph_def.node[1].attr["f"].func.name = "save_fn"
    meta.graph_def.node[2].attr["f"].func.name = "init_fn"
    meta.saver_def.save_tensor_name = "save:0"
    meta.saver_def.filename_tensor_name = "saver_filename:0"
    with pytest.raises(scan.UnsafeModelError, match=r"SaveV2 \(in init_fn\)$|SaveV2 \(in init_fn\);") as e:
        scan.scan_saved_model("/nonexistent", meta, allow_unsafe=False)
    assert "save_fn" not in str(e.value)


def test_restore_prefix_must_come_from_the_saver_filename():
    def meta_with(prefix_source: str) -> meta_graph_pb2.MetaGraphDef:
        meta = meta_graph_pb2.MetaGraphDef()
        meta.graph_def.CopyFrom(
            _graph(
                ("saver_filename", "Placeholder", []),
                ("elsewhere", "Const", []),
                ("restore", "StatefulPartitionedCall", [prefix_source]),
                functions=[
                    (
                        "restore_fn",
                        ["prefix"],
                        [("id", "Identity", ["prefix"]), ("r", "RestoreV2", ["id:output:0"])],
                    )
                ],
            )
        )
        _string_const(meta.graph_def.node[1], "/etc/shadow")
        meta.graph_def.node[2].attr["f"].func.name = "restore_fn"
        meta.saver_def.filename_tensor_name = "saver_filename:0"
        return meta

    scan.scan_saved_model("/nonexistent", meta_with("saver_filename"), allow_unsafe=False)
    with pytest.raises(
        scan.UnsafeModelError, match=r"RestoreV2 in restore_fn reads the constant path '/etc/shadow'"
    ):
        scan.scan_saved_model("/nonexistent", meta_with("elsewhere"), allow_unsafe=False)


def test_constant_and_allocation_bounds():
    g = _graph(("c", "Const", []), ("dims", "Const", []), ("fill", "Fill", ["dims", "v"]), ("v", "Const", []))
    c = g.node[0].attr["value"].tensor
    c.dtype = tf.float32.as_datatype_enum
    c.float_val.append(0.0)
    for d in (1 << 15, 1 << 15):  # 4 GiB of float32 from one stored value
        c.tensor_shape.dim.add().size = d
    dims = g.node[1].attr["value"].tensor
    dims.dtype = tf.int32.as_datatype_enum
    dims.tensor_shape.dim.add().size = 2
    dims.int_val.extend([1 << 16, 1 << 16])
    g.node[2].attr["T"].type = tf.float32.as_datatype_enum
    with pytest.raises(scan.UnsafeModelError) as e:
        scan.scan_graph_def(g, "m.pb", allow_unsafe=False)
    assert "a constant that expands to 4294967296 bytes (c in the graph)" in str(e.value)
    assert "Fill allocating 17179869184 bytes (fill in the graph)" in str(e.value)
    # Just under the bound is fine: 256 MiB.
    del c.tensor_shape.dim[:]
    c.tensor_shape.dim.add().size = 1 << 26
    dims.int_val[:] = [1 << 13, 1 << 13]
    scan.scan_graph_def(g, "m.pb", allow_unsafe=False)


def test_cycles_and_depth_are_refused_even_when_unsafe_is_allowed():
    cyclic = _graph(functions=[("a", [], [("n", "b", [])]), ("b", [], [("n", "a", [])])])
    with pytest.raises(scan.UnsafeModelError, match="cyclic"):
        scan.scan_graph_def(cyclic, "m.pb", allow_unsafe=True)
    chain = [(f"f{i}", [], [("n", f"f{i + 1}", [])]) for i in range(scan_graph.MAX_CALL_DEPTH + 5)]
    chain.append((f"f{scan_graph.MAX_CALL_DEPTH + 5}", [], []))
    with pytest.raises(scan.UnsafeModelError, match="nest deeper than 64"):
        scan.scan_graph_def(_graph(functions=chain), "m.pb", allow_unsafe=False)
    ok = [(f"f{i}", [], [("n", f"f{i + 1}", [])]) for i in range(20)] + [("f20", [], [])]
    scan.scan_graph_def(_graph(functions=ok), "m.pb", allow_unsafe=False)


def test_streamed_graph_def_reader_matches_protobuf(tmp_path):
    g = _graph(
        ("a", "Const", []), ("b", "Identity", ["a"]), functions=[("f", ["x"], [("i", "Identity", ["x"])])]
    )
    g.versions.producer = 1234
    path = tmp_path / "g.pb"
    path.write_bytes(g.SerializeToString())
    assert proto_readers.read_graph_def(str(path)) == g
    path.write_bytes(g.SerializeToString()[:-3])
    with pytest.raises(ConversionError, match="cannot read frozen GraphDef"):
        proto_readers.read_graph_def(str(path))


def test_assets_stay_inside_the_model(tmp_path):
    model = tmp_path / "m"
    (model / "assets").mkdir(parents=True)
    (model / "assets" / "vocab.txt").write_text("a\n")
    meta = meta_graph_pb2.MetaGraphDef()
    meta.asset_file_def.add(filename="vocab.txt")
    scan.scan_saved_model(str(model), meta, allow_unsafe=False)
    for bad in ("../x.txt", "/etc/passwd", "sub/../../x"):
        meta.asset_file_def[0].filename = bad
        with pytest.raises(scan.UnsafeModelError, match="not a file inside its assets directory"):
            scan.scan_saved_model(str(model), meta, allow_unsafe=True)  # not lifted by the flag
    meta.asset_file_def[0].filename = "vocab.txt"
    os.unlink(model / "assets" / "vocab.txt")
    os.symlink("/etc/passwd", model / "assets" / "vocab.txt")
    with pytest.raises(scan.UnsafeModelError, match="resolves outside the model directory"):
        scan.scan_saved_model(str(model), meta, allow_unsafe=False)


def test_a_repeated_node_name_cannot_hide_an_op():
    g = _graph(functions=[("f", [], [("x", "WriteFile", []), ("x", "Identity", [])])])
    with pytest.raises(scan.UnsafeModelError, match="function f has two nodes with the same name"):
        scan.scan_graph_def(g, "m.pb", allow_unsafe=False)
