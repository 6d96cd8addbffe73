"""tfjs_pb2json: legacy 0.x graph models -> model.json, checked in the real tfjs runtime.

The legacy directories come from ``tests/fixtures/legacy_generator.py``, which writes
the 0.x layout by hand from real frozen TF graphs; the reference outputs come from
TensorFlow running those graphs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import legacy_generator as lg
import numpy as np
import pytest
import tolerances

from tfjsconv_pb2json import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    """Three legacy models: a 5-shard MLP, a CNN, and the CNN quantized to uint8."""
    root = tmp_path_factory.mktemp("legacy")
    models = {"mlp": lg.make_mlp(), "cnn": lg.make_cnn(), "cnn_uint8": lg.make_cnn()}
    lg.write_legacy(models["mlp"], str(root / "mlp"), shard_size=64)
    lg.write_legacy(models["cnn"], str(root / "cnn"))
    lg.write_legacy(models["cnn_uint8"], str(root / "cnn_uint8"), quantize="uint8")
    return root, models


def tree_hash(path: Path) -> dict:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(capsys, argv, *needles):
    code, _out, err = run(capsys, *argv)
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("tfjs_pb2json: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def copy_model(legacy, name, tmp_path) -> Path:
    src = tmp_path / name
    shutil.copytree(legacy[0] / name, src)
    return src


def parity_bound(frozen: lg.FrozenGraph, x: np.ndarray) -> float:
    """``tolerances``' bound from the graph's float64 twin (TF's own float32 error)."""
    ref64 = tolerances.graph_float64_outputs(
        frozen.graph_def, {frozen.input_name + ":0": x}, [frozen.output_name + ":0"]
    )
    return tolerances.twin_tolerance([frozen.run(x)], ref64)


def dequantized_reference(frozen: lg.FrozenGraph, model_dir: Path) -> lg.FrozenGraph:
    """The original graph with every Const replaced by what the manifest decodes to.

    Decoding follows the documented tfjs-core rule (``q*scale+min`` into a
    Float32Array; ``Math.round`` of it for int32), written here independently of the
    converter, so it checks the migrated manifest and shard bytes.
    """
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2

    manifest = json.loads((model_dir / "model.json").read_text())["weightsManifest"]
    values = {}
    for group in manifest:
        data = b"".join((model_dir / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"]))
            q = w.get("quantization")
            if q:
                stored = np.frombuffer(
                    data, dtype="<" + {"uint8": "u1", "uint16": "u2"}[q["dtype"]][-2:], count=n, offset=offset
                )
                offset += stored.nbytes
                deq = (stored.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
                value = np.round(deq).astype(np.int32) if w["dtype"] == "int32" else deq
            else:
                dt = {"float32": "<f4", "int32": "<i4"}[w["dtype"]]
                value = np.frombuffer(data, dtype=dt, count=n, offset=offset)
                offset += value.nbytes
            values[w["name"]] = value.reshape(w["shape"])
    gd = graph_pb2.GraphDef()
    gd.CopyFrom(frozen.graph_def)
    for node in gd.node:
        if node.op == "Const":
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(values[node.name]))
    return lg.FrozenGraph(gd, frozen.input_name, frozen.input_shape, frozen.output_name)


@pytest.mark.tfjs
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_migrated_model_matches_tensorflow_in_tfjs(legacy, name, tmp_path, capsys, tfjs):
    src_root, models = legacy
    dest = tmp_path / "out"
    code, out, err = run(capsys, src_root / name, dest)
    assert code == 0, err
    legacy_shards = sorted(p.name for p in (src_root / name).iterdir() if p.name.startswith("group"))
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["model.json"] + [s + ".bin" for s in legacy_shards]
    )
    for shard in legacy_shards:  # weight bytes are carried over unchanged
        assert (dest / (shard + ".bin")).read_bytes() == (src_root / name / shard).read_bytes()
    x = np.random.default_rng(7).normal(size=models[name].input_shape).astype(np.float32)
    expected = models[name].run(x)
    (got,) = tfjs.predict(dest, [x], kind="graph")
    np.testing.assert_allclose(got, expected, rtol=0, atol=parity_bound(models[name], x))


@pytest.mark.tfjs
def test_quantized_legacy_model_gains_original_dtype_and_runs(legacy, tmp_path, capsys, tfjs):
    src_root, models = legacy
    dest = tmp_path / "out"
    code, _out, err = run(capsys, src_root / "cnn_uint8", dest)
    assert code == 0, err
    legacy_manifest = json.loads((src_root / "cnn_uint8" / "weights_manifest.json").read_text())
    manifest = json.loads((dest / "model.json").read_text())["weightsManifest"]
    assert manifest[0]["paths"] == ["group1-shard1of1.bin"]
    for old, new in zip(legacy_manifest[0]["weights"], manifest[0]["weights"], strict=False):
        assert list(new) == ["name", "shape", "dtype", "quantization"]
        assert list(new["quantization"]) == ["dtype", "min", "scale", "original_dtype"]
        assert new["quantization"]["original_dtype"] == old["dtype"]
        assert {k: new["quantization"][k] for k in ("dtype", "min", "scale")} == old["quantization"]
    # The reshape's int32 shape constant is quantized too (0.x did that).
    assert [w["name"] for w in manifest[0]["weights"] if w["dtype"] == "int32"] == ["Const"]

    x = np.random.default_rng(8).normal(size=models["cnn_uint8"].input_shape).astype(np.float32)
    (got,) = tfjs.predict(dest, [x], kind="graph")
    # Exact up to float32 round-off against TF running the dequantized weights ...
    dequantized = dequantized_reference(models["cnn_uint8"], dest)
    np.testing.assert_allclose(got, dequantized.run(x), rtol=0, atol=parity_bound(dequantized, x))
    # ... and within the uint8 error budget of the float model: each weight moves by
    # at most scale/2 (< 0.005 here); the softmax outputs move by well under 0.05.
    assert np.abs(got - models["cnn_uint8"].run(x)).max() < 0.05


def test_model_json_layout_and_determinism(legacy, tmp_path, capsys):
    src = legacy[0] / "mlp"
    assert run(capsys, src, tmp_path / "a")[0] == 0
    assert run(capsys, src, tmp_path / "b")[0] == 0
    assert tree_hash(tmp_path / "a") == tree_hash(tmp_path / "b")
    raw = (tmp_path / "a" / "model.json").read_bytes()
    assert str(tmp_path).encode() not in raw and str(src).encode() not in raw
    model = json.loads(raw)
    assert list(model) == ["format", "convertedBy", "modelTopology", "weightsManifest"]
    assert model["format"] == "graph-model"
    assert model["convertedBy"] == "TensorFlow.js Converter v4.22.0 (tfjsconv 0.1.0)"
    consts = [n for n in model["modelTopology"]["node"] if n["op"] == "Const"]
    assert consts and all(set(n["attr"]["value"]["tensor"]) == {"dtype", "tensorShape"} for n in consts)
    assert model["weightsManifest"][0]["paths"] == [f"group1-shard{i}of5.bin" for i in range(1, 6)]
    for node in model["modelTopology"]["node"]:
        assert list(node.get("attr", {})) == sorted(node.get("attr", {}))


def test_src_is_never_modified(legacy, tmp_path, capsys):
    src = copy_model(legacy, "cnn_uint8", tmp_path)
    (src / "README.txt").write_text("notes\n")
    before = tree_hash(src)
    assert run(capsys, src, tmp_path / "out")[0] == 0
    assert run(capsys, src, tmp_path / "out", "--overwrite")[0] == 0
    assert tree_hash(src) == before
    assert (tmp_path / "out" / "README.txt").read_text() == "notes\n"
    assert run(capsys, src, tmp_path / "out2", "--no_extra_files")[0] == 0
    assert_user_error(capsys, [src, src / "out"], "inside the input directory")
    assert not (tmp_path / "out2" / "README.txt").exists()


def test_dry_run_writes_nothing_and_says_what_would_change(legacy, tmp_path, capsys):
    src = copy_model(legacy, "cnn_uint8", tmp_path)
    before = tree_hash(tmp_path)
    code, out, err = run(capsys, "--dry-run", src, tmp_path / "out")
    assert code == 0, err
    assert tree_hash(tmp_path) == before and not (tmp_path / "out").exists()
    assert "rename shard group1-shard1of1 -> group1-shard1of1.bin" in out
    assert "weight Const: quantization gains original_dtype int32" in out
    assert "weight MatMul/ReadVariableOp/resource: quantization gains original_dtype float32" in out


def test_existing_dest_needs_overwrite(legacy, tmp_path, capsys):
    src = legacy[0] / "cnn"
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("x")
    assert_user_error(capsys, [src, dest], "not empty", "--overwrite")
    assert_user_error(capsys, ["--dry-run", src, dest], "not empty", "--overwrite")
    assert (dest / "keep.txt").exists()
    assert run(capsys, "--dry-run", "--overwrite", src, dest)[0] == 0
    code, _out, err = run(capsys, src, dest, "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in dest.iterdir()) == ["group1-shard1of1.bin", "model.json"]


def test_batch_mirrors_the_tree(legacy, tmp_path, capsys):
    src_root = tmp_path / "src"
    shutil.copytree(legacy[0] / "mlp", src_root / "a" / "mlp")
    shutil.copytree(legacy[0] / "cnn_uint8", src_root / "b" / "c" / "cnn")
    (src_root / "b" / "unrelated.txt").write_text("not a model")
    code, out, _err = run(capsys, "--batch", "--dry-run", src_root, tmp_path / "dst")
    assert code == 0 and not (tmp_path / "dst").exists()
    assert out.count("migrate ") == 2
    code, out, err = run(capsys, "--batch", src_root, tmp_path / "dst")
    assert code == 0, err
    assert (tmp_path / "dst" / "a" / "mlp" / "model.json").is_file()
    assert (tmp_path / "dst" / "b" / "c" / "cnn" / "group1-shard1of1.bin").is_file()
    assert not (tmp_path / "dst" / "b" / "unrelated.txt").exists()
    assert_user_error(capsys, ["--batch", tmp_path / "dst", tmp_path / "x"], "no legacy model")
    assert_user_error(capsys, ["--batch", src_root, src_root / "out"], "inside SRC_ROOT")
    # A second batch run refuses to clobber, before writing anything.
    assert_user_error(capsys, ["--batch", src_root, tmp_path / "dst"], "not empty")
    code, _out, err = run(capsys, "--batch", "--overwrite", src_root, tmp_path / "dst")
    assert code == 0, err


def test_batch_validates_everything_before_writing(legacy, tmp_path, capsys):
    src_root = tmp_path / "src"
    shutil.copytree(legacy[0] / "mlp", src_root / "a")
    shutil.copytree(legacy[0] / "cnn", src_root / "b")
    (src_root / "b" / "group1-shard1of1").unlink()
    assert_user_error(capsys, ["--batch", src_root, tmp_path / "dst"], "missing shard")
    assert not (tmp_path / "dst").exists()


def _corrupt(src: Path, how: str) -> None:
    manifest_path = src / "weights_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if how == "missing_pb":
        (src / "tensorflowjs_model.pb").unlink()
    elif how == "corrupt_pb":
        (src / "tensorflowjs_model.pb").write_bytes(b"\xff\xfe this is not a protobuf \x00\x01")
    elif how == "empty_pb":
        (src / "tensorflowjs_model.pb").write_bytes(b"")
    elif how == "missing_manifest":
        manifest_path.unlink()
    elif how == "corrupt_manifest":
        manifest_path.write_text('[{"paths": ["group1-shard1of1"], ')
    elif how == "manifest_not_list":
        manifest_path.write_text('{"paths": []}')
    elif how == "traversal":
        manifest[0]["paths"] = ["../../etc/passwd"]
        manifest_path.write_text(json.dumps(manifest))
    elif how == "absolute":
        manifest[0]["paths"] = ["/etc/passwd"]
        manifest_path.write_text(json.dumps(manifest))
    elif how == "missing_shard":
        (src / "group1-shard1of1").unlink()
    elif how == "short_shard":
        shard = src / "group1-shard1of1"
        shard.write_bytes(shard.read_bytes()[:-4])
    elif how == "missing_weight":
        manifest[0]["weights"][0]["name"] = "renamed_weight"
        manifest_path.write_text(json.dumps(manifest))
    elif how == "bad_dtype":
        manifest[0]["weights"][0]["dtype"] = "float128"
        manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "how, needles",
    [
        ("missing_pb", ["missing GraphDef", "tensorflowjs_model.pb"]),
        ("corrupt_pb", ["tensorflowjs_model.pb is not a binary GraphDef"]),
        ("empty_pb", ["tensorflowjs_model.pb is not a binary GraphDef", "no nodes"]),
        ("missing_manifest", ["missing weights manifest", "weights_manifest.json"]),
        ("corrupt_manifest", ["weights_manifest.json is not valid JSON"]),
        ("manifest_not_list", ["weights_manifest.json", "JSON list"]),
        ("traversal", ["'../../etc/passwd' escapes the model directory"]),
        ("absolute", ["'/etc/passwd' escapes the model directory"]),
        ("missing_shard", ["missing shard 'group1-shard1of1'"]),
        ("short_shard", ["shard size mismatch in group 1", "1588 bytes", "need 1592"]),
        ("missing_weight", ["no weight for Const node", "Conv2D/ReadVariableOp/resource"]),
        ("bad_dtype", ["unsupported dtype 'float128'"]),
    ],
)
def test_user_errors_are_one_line(legacy, tmp_path, capsys, how, needles):
    src = copy_model(legacy, "cnn", tmp_path)
    _corrupt(src, how)
    before = tree_hash(src)
    assert_user_error(capsys, [src, tmp_path / "out"], *needles)
    assert not (tmp_path / "out").exists()
    assert tree_hash(src) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tfjsconv-staging")]


def test_usage_errors_exit_2(tmp_path, capsys):
    code, _out, err = run(capsys, str(tmp_path))
    assert code == 2 and "tfjs_pb2json: error:" in err and "Traceback" not in err
    code, out, _err = run(capsys, "--help")
    assert code == 0 and "--batch" in out
