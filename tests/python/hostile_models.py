"""Hostile models for the safety tests, generated on demand (never checked in).

Each model tries, if converted naively, to write a sentinel file, read a file outside
the model, or exhaust memory.  ``build(root)`` writes them all under ``root`` and
returns ``{name: path}``; sentinels go to ``root/sentinels/<name>`` and the "secret"
file outside every model is ``root/secret.txt``.  Run as a script (TensorFlow stays
out of the pytest process): ``python hostile_models.py ROOT``.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import zipfile
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The file-system effects each model attempts, relative to ``root``.
SENTINEL_DIR = "sentinels"
SECRET = "secret.txt"


def sentinel(root: str, name: str) -> str:
    return os.path.join(root, SENTINEL_DIR, name)


def _resource_module(tf, initialize: Callable[[object], object]):
    """A tf.Module with one hash table whose *initializer* (run at load) is ``initialize``."""

    class Table(tf.saved_model.experimental.TrackableResource):
        def _create_resource(self):
            return tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.int64)

        def _initialize(self):
            return initialize(self.resource_handle)

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = Table()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="w")])
        def __call__(self, w):
            return {
                "ids": tf.raw_ops.LookupTableFindV2(
                    table_handle=self.table.resource_handle, keys=w, default_value=tf.constant(-1, tf.int64)
                )
            }

    return Model()


def _save(tf, module, path: str) -> str:
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})
    return path


def _plain_module(tf, body):
    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.v = tf.Variable(tf.ones([3]))

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": body(x) * self.v}

    return Model()


def _edit_saved_model(src: str, dst: str, edit: Callable[[object], None]) -> str:
    from tensorflow.core.protobuf import saved_model_pb2

    shutil.copytree(src, dst)
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(dst, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    edit(proto.meta_graphs[0])
    with open(os.path.join(dst, "saved_model.pb"), "wb") as f:
        f.write(proto.SerializeToString())
    return dst


def _zip_bomb(path: str, real_keras: str) -> str:
    """A ``.keras`` whose weights entry inflates 1 GiB of zeros from about 1 MB."""
    import zlib

    with zipfile.ZipFile(real_keras) as real:
        members = {i.filename: real.read(i) for i in real.infolist() if i.filename != "model.weights.h5"}
    size = 1 << 30
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 24)
    body = b"".join(comp.compress(chunk) for _ in range(size // len(chunk))) + comp.flush()
    crc = 0
    for _ in range(size // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    with zipfile.ZipFile(path, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    # Append the bomb entry by hand (zipfile would compress 1 GiB itself).
    with open(path, "r+b") as f:
        data = f.read()
        eocd = data.rfind(b"PK\x05\x06")
        cd_size, cd_offset = struct.unpack("<II", data[eocd + 12 : eocd + 20])
        entries = struct.unpack("<H", data[eocd + 10 : eocd + 12])[0]
        central = data[cd_offset : cd_offset + cd_size]
        name = b"model.weights.h5"
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(body), size, len(name), 0)
        offset = cd_offset
        entry = struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            8,
            0,
            0x21,
            crc,
            len(body),
            size,
            len(name),
            0,
            0,
            0,
            0,
            0o644 << 16,
            offset,
        )
        f.seek(cd_offset)
        f.truncate()
        f.write(local + name + body)
        new_cd = f.tell()
        f.write(central + entry + name)
        f.write(
            struct.pack(
                "<IHHHHIIH",
                0x06054B50,
                0,
                0,
                entries + 1,
                entries + 1,
                len(central) + len(entry) + len(name),
                new_cd,
                0,
            )
        )
    return path


def _h5_bomb(path: str, real_h5: str) -> str:
    """The tiny Keras h5 with its kernel replaced by a chunked 4 TiB dataset of fill values."""
    import h5py

    shutil.copyfile(real_h5, path)
    with h5py.File(path, "r+") as f:
        group = f["model_weights/d/d"]
        name = "kernel:0" if "kernel:0" in group else min(group)
        del group[name]
        group.create_dataset(
            name,
            shape=(1 << 20, 1 << 20),
            dtype="float32",
            chunks=(1024, 1024),
            compression="gzip",
            fillvalue=1.0,
        )
    return path


def build(root: str) -> dict[str, str]:
    import numpy as np
    import tensorflow as tf

    os.makedirs(os.path.join(root, SENTINEL_DIR), exist_ok=True)
    secret = os.path.join(root, SECRET)
    with open(secret, "w") as f:
        f.write("secret\nkey\n")
    out: dict[str, str] = {}
    models = os.path.join(root, "models")
    os.makedirs(models, exist_ok=True)

    def write_init(handle):
        tf.io.write_file(sentinel(root, "sm_init_write_file"), "pwned")
        return tf.raw_ops.InitializeTableV2(
            table_handle=handle, keys=tf.constant(["a"]), values=tf.constant([1], tf.int64)
        )

    out["sm_init_write_file"] = _save(
        tf, _resource_module(tf, write_init), os.path.join(models, "init_write")
    )

    def print_init(handle):
        tf.print("pwned", output_stream="file://" + sentinel(root, "sm_init_print_to_file"))
        return tf.raw_ops.InitializeTableV2(
            table_handle=handle, keys=tf.constant(["a"]), values=tf.constant([1], tf.int64)
        )

    out["sm_init_print_to_file"] = _save(
        tf, _resource_module(tf, print_init), os.path.join(models, "init_print")
    )

    def read_init(handle):
        return tf.raw_ops.InitializeTableFromTextFileV2(
            table_handle=handle, filename=tf.constant(secret), key_index=-2, value_index=-1
        )

    out["sm_init_read_outside"] = _save(
        tf, _resource_module(tf, read_init), os.path.join(models, "init_read")
    )

    def read_file_init(handle):
        content = tf.io.read_file(secret)
        return tf.raw_ops.InitializeTableV2(
            table_handle=handle, keys=tf.reshape(content, [1]), values=tf.constant([1], tf.int64)
        )

    out["sm_init_read_file"] = _save(
        tf, _resource_module(tf, read_file_init), os.path.join(models, "init_readfile")
    )

    def matching_files_init(handle):
        names = tf.io.matching_files(os.path.join(root, "*"))
        return tf.raw_ops.InitializeTableV2(
            table_handle=handle, keys=names[:1], values=tf.constant([1], tf.int64)
        )

    out["sm_init_list_files"] = _save(
        tf, _resource_module(tf, matching_files_init), os.path.join(models, "init_glob")
    )

    def py_body(x):
        return tf.py_function(lambda t: t * 2, [x], tf.float32)

    out["sm_py_function"] = _save(tf, _plain_module(tf, py_body), os.path.join(models, "py_function"))

    def fill_bomb(x):
        big = tf.fill(tf.constant([1 << 17, 1 << 17]), 1.0)  # 64 GiB if constant-folded
        return x + tf.reduce_sum(big)

    out["sm_fill_bomb"] = _save(tf, _plain_module(tf, fill_bomb), os.path.join(models, "fill_bomb"))
    plain = _save(tf, _plain_module(tf, lambda x: x * 2.0), os.path.join(models, "plain"))

    # A table read from a real asset, then pointed outside the model.
    class Vocab(tf.Module):
        def __init__(self, vocab):
            super().__init__()
            init = tf.lookup.TextFileInitializer(
                vocab,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            )
            self.table = tf.lookup.StaticHashTable(init, -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="w")])
        def __call__(self, w):
            return {"ids": self.table.lookup(w)}

    vocab_file = os.path.join(root, "vocab.txt")
    with open(vocab_file, "w") as f:
        f.write("a\nb\n")
    vocab = _save(tf, Vocab(vocab_file), os.path.join(models, "vocab"))

    def asset_escape(meta):
        meta.asset_file_def[0].filename = "../../../" + SECRET

    out["sm_asset_dotdot"] = _edit_saved_model(vocab, os.path.join(models, "asset_dotdot"), asset_escape)

    def asset_absolute(meta):
        meta.asset_file_def[0].filename = secret

    out["sm_asset_absolute"] = _edit_saved_model(vocab, os.path.join(models, "asset_abs"), asset_absolute)
    link_model = os.path.join(models, "asset_symlink")
    shutil.copytree(vocab, link_model)
    asset = os.path.join(link_model, "assets", "vocab.txt")
    os.unlink(asset)
    os.symlink(secret, asset)
    out["sm_asset_symlink"] = link_model

    def const_bomb(meta):
        for func in meta.graph_def.library.function:
            for node in func.node_def:
                if node.op == "Const" and node.attr["value"].tensor.dtype == tf.float32.as_datatype_enum:
                    tensor = node.attr["value"].tensor
                    tensor.ClearField("tensor_content")
                    tensor.float_val[:] = [2.0]
                    del tensor.tensor_shape.dim[:]
                    for d in (1 << 16, 1 << 16, 16):
                        tensor.tensor_shape.dim.add().size = d
                    return
        raise AssertionError("no float Const to inflate")

    out["sm_const_bomb"] = _edit_saved_model(plain, os.path.join(models, "const_bomb"), const_bomb)

    def cyclic(meta):
        lib = meta.graph_def.library
        for name, other in (("cycle_a", "cycle_b"), ("cycle_b", "cycle_a")):
            func = lib.function.add()
            func.signature.name = name
            node = func.node_def.add()
            node.name = "call"
            node.op = other
        lib.function[0].node_def.add(name="enter_cycle", op="cycle_a")

    out["sm_cyclic_functions"] = _edit_saved_model(plain, os.path.join(models, "cyclic"), cyclic)

    def deep(meta):
        lib = meta.graph_def.library
        for i in range(200):
            func = lib.function.add()
            func.signature.name = f"nest_{i}"
            if i < 199:
                func.node_def.add(name="call", op=f"nest_{i + 1}")
        lib.function[0].node_def.add(name="enter_nest", op="nest_0")

    out["sm_deep_functions"] = _edit_saved_model(plain, os.path.join(models, "deep"), deep)

    ckpt = os.path.join(models, "ckpt_bomb")
    _save(tf, _plain_module(tf, lambda x: x), ckpt)
    data = [
        os.path.join(ckpt, "variables", f)
        for f in os.listdir(os.path.join(ckpt, "variables"))
        if f.startswith("variables.data")
    ]
    for path in data:
        with open(path, "r+b") as f:
            f.truncate(4)
    out["sm_variables_truncated"] = ckpt

    # Frozen GraphDefs: one writes a file, one allocates from a constant shape.
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        write = tf.io.write_file(sentinel(root, "frozen_write_file"), "pwned")
        with tf.control_dependencies([write]):
            tf.identity(x * 2.0, name="out")
    frozen = os.path.join(models, "write.pb")
    with open(frozen, "wb") as f:
        f.write(graph.as_graph_def().SerializeToString())
    out["frozen_write_file"] = frozen
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        tf.identity(x + tf.reduce_sum(tf.fill([1 << 17, 1 << 17], 1.0)), name="out")
    frozen = os.path.join(models, "fill.pb")
    with open(frozen, "wb") as f:
        f.write(graph.as_graph_def().SerializeToString())
    out["frozen_fill_bomb"] = frozen

    # Keras files: a 4 TiB dataset in a tiny h5, and a zip bomb.
    import tf_keras

    tiny = tf_keras.Sequential([tf_keras.layers.Input((3,)), tf_keras.layers.Dense(2, name="d")])
    tiny_h5 = os.path.join(models, "tiny.h5")
    tiny.save(tiny_h5)
    out["h5_dataset_bomb"] = _h5_bomb(os.path.join(models, "bomb.h5"), tiny_h5)
    import keras

    k = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(2, name="d")])
    k.save(os.path.join(models, "tiny.keras"))
    out["keras_zip_bomb"] = _zip_bomb(os.path.join(models, "bomb.keras"), os.path.join(models, "tiny.keras"))
    np.random.seed(0)
    with open(os.path.join(root, "models.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    return out


if __name__ == "__main__":
    build(sys.argv[1])
