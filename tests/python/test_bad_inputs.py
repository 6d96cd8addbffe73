"""Bad inputs through the real CLI (a subprocess, like a user or a build rule would run it).

Every row must fail with a non-zero exit code and exactly one stderr line naming the
problem, no traceback, nothing left at (or changed in) the output path, and the inputs
untouched. A few rows with odd-but-valid inputs (Unicode, spaces) must succeed.

Fixtures are built once per session (a tiny tf_keras h5, a Keras 3 ``.keras``, a
SavedModel, and a tfjs layers model); every row works on its own copy. HOSTILE_ROWS use
the hostile corpus of ``hostile_models.py`` (built on first use): they also require that
the model's sentinel file never appears and that the CLI's peak RSS stays under 1 GiB.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = (
    str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
)

# TensorFlow's C++ logging writes these to stderr before Python can configure anything;
# they are filtered here and checked separately by test_no_tensorflow_log_noise.
_TF_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWEF]\d{4} \d\d:\d\d:\d+(\.\d+)? |"
    r"To enable the following instructions:|WARNING:tensorflow:|.*oneDNN custom operations)"
)


# Peak RSS any bad-input conversion may reach: importing TensorFlow costs about 0.55 GB
# here; the memory bombs below ask for 1 GiB (zip) to 256 GiB (constants) if obeyed.
MAX_RSS_BYTES = 1024**3


def _run_cli(args: list[str], cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI; the result also carries ``max_rss`` (bytes), the child's peak RSS
    from ``wait4`` (not the largest of every child pytest ever ran)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "converter")
    env.pop("CI_TFJSCONV_DEBUG", None)
    for key, value in (env_extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    proc = subprocess.Popen(
        [PYTHON, "-m", "tfjsconv.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    streams: dict = {}
    reader = threading.Thread(target=lambda: streams.update(out=proc.stdout.read()))
    reader.start()
    timer = threading.Timer(300, proc.kill)
    timer.start()
    try:
        err = proc.stderr.read()
        reader.join()
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, streams.get("out", ""), err)
    done.max_rss = usage.ru_maxrss * 1024  # type: ignore[attr-defined]
    return done


def _tree_hash(path: Path) -> str | None:
    """Hash of a file or directory tree (names + bytes); None if absent."""
    if not os.path.lexists(path):
        return None
    h = hashlib.sha256()
    if path.is_file() or path.is_symlink():
        h.update(path.read_bytes() if path.exists() else b"<dangling>")
        return h.hexdigest()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = Path(root, name)
            h.update(str(full.relative_to(path)).encode("utf-8", "surrogateescape") + b"\0")
            h.update(full.read_bytes() if full.exists() else b"<dangling>")
    return h.hexdigest()


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory) -> Path:
    """Tiny valid models of every input kind, built once (in a subprocess: keeps TF out of pytest)."""
    root = tmp_path_factory.mktemp("bad_inputs_fixtures")
    script = r"""
import os, sys
import numpy as np
root = sys.argv[1]
import tf_keras, tensorflow as tf
tf.random.set_seed(1)
m = tf_keras.Sequential([tf_keras.layers.Input((3,)), tf_keras.layers.Dense(2, name="d")])
m.save(os.path.join(root, "tiny.h5"))
w = [np.full_like(x, np.nan) for x in m.get_weights()]
m.set_weights(w)
m.save(os.path.join(root, "nan.h5"))
class M(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(np.ones((3, 2), np.float32))
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)], autograph=False)
    def __call__(self, x):
        return tf.matmul(x, self.w)
mod = M()
tf.saved_model.save(mod, os.path.join(root, "sm"), signatures=mod.__call__)
import keras
k = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(2, name="d")])
k.save(os.path.join(root, "tiny.keras"))
"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO / "converter"))
    subprocess.run([PYTHON, "-c", script, str(root)], check=True, env=env, capture_output=True)
    done = _run_cli(["--input_format=keras", str(root / "tiny.h5"), str(root / "layers")], root)
    assert done.returncode == 0, done.stderr
    return root


@dataclasses.dataclass
class Case:
    """One prepared row: argv for the CLI, the paths that must not change."""

    args: list[str]
    output: Path
    inputs: list[Path]


def _copy(fixtures: Path, name: str, work: Path, dest: str | None = None) -> Path:
    src = fixtures / name
    dst = work / (dest or name)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _h5(mutate: Callable[[bytes], bytes] | None = None, fmt: str = "keras", extra=()):
    def build(fx: Path, work: Path) -> Case:
        src = _copy(fx, "tiny.h5", work)
        if mutate is not None:
            src.write_bytes(mutate(src.read_bytes()))
        return Case([f"--input_format={fmt}", *extra, str(src), str(work / "out")], work / "out", [src])

    return build


def _keras_zip(members: dict | None = None, raw: bytes | None = None, keep_from_real=True):
    def build(fx: Path, work: Path) -> Case:
        dst = work / "model.keras"
        if raw is not None:
            _write(dst, raw)
        else:
            with zipfile.ZipFile(fx / "tiny.keras") as real, zipfile.ZipFile(dst, "w") as out:
                if keep_from_real:
                    for info in real.infolist():
                        if info.filename not in (members or {}):
                            out.writestr(info.filename, real.read(info.filename))
                for name, data in (members or {}).items():
                    if data is not None:
                        out.writestr(name, data)
        return Case(
            ["--input_format=keras_keras", "--output_format=tfjs_layers_model", str(dst), str(work / "out")],
            work / "out",
            [dst],
        )

    return build


def _saved_model(mutate: Callable[[Path], None] | None = None, extra=(), fmt: str = "tf_saved_model"):
    def build(fx: Path, work: Path) -> Case:
        sm = _copy(fx, "sm", work)
        if mutate is not None:
            mutate(sm)
        return Case([f"--input_format={fmt}", *extra, str(sm), str(work / "out")], work / "out", [sm])

    return build


def _frozen(data: bytes, extra=("--output_node_names=out",)):
    def build(fx: Path, work: Path) -> Case:
        pb = _write(work / "frozen.pb", data)
        return Case(
            ["--input_format=tf_frozen_model", *extra, str(pb), str(work / "out")], work / "out", [pb]
        )

    return build


def _layers(
    mutate: Callable[[Path, dict], dict | None] | None = None,
    extra=(),
    out_fmt: str = "tfjs_layers_model",
):
    """A copy of the tfjs layers model; ``mutate(dir, model_json)`` may edit files or return new JSON."""

    def build(fx: Path, work: Path) -> Case:
        model = _copy(fx, "layers", work)
        if mutate is not None:
            obj = json.loads((model / "model.json").read_text())
            new = mutate(model, obj)
            if new is not None:
                (model / "model.json").write_text(json.dumps(new))
        return Case(
            [
                "--input_format=tfjs_layers_model",
                f"--output_format={out_fmt}",
                *extra,
                str(model / "model.json"),
                str(work / "out"),
            ],
            work / "out",
            [model],
        )

    return build


def _shard(model: Path) -> Path:
    return model / "group1-shard1of1.bin"


def _set_manifest(key_path, value):
    def mutate(model: Path, obj: dict) -> dict:
        target = obj
        for key in key_path[:-1]:
            target = target[key]
        target[key_path[-1]] = value
        return obj

    return mutate


def _truncate_shard(model: Path, obj: dict) -> None:
    data = _shard(model).read_bytes()
    _shard(model).write_bytes(data[: len(data) // 2])


def _extend_shard(model: Path, obj: dict) -> None:
    with open(_shard(model), "ab") as f:
        f.write(b"\0\0\0\0")


def _remove_shard(model: Path, obj: dict) -> None:
    _shard(model).unlink()


def _split_shard_count(model: Path, obj: dict) -> dict:
    # The manifest claims two shards, only one exists: count mismatch.
    obj["weightsManifest"][0]["paths"] = ["group1-shard1of2.bin", "group1-shard2of2.bin"]
    _shard(model).rename(model / "group1-shard1of2.bin")
    return obj


def _nan_shard(model: Path, obj: dict) -> None:
    size = len(_shard(model).read_bytes())
    _shard(model).write_bytes(b"\x00\x00\xc0\x7f" * (size // 4))  # float32 NaN


def _escape_symlink(model: Path, obj: dict) -> None:
    secret = model.parent / "secret.bin"
    secret.write_bytes(_shard(model).read_bytes())
    _shard(model).unlink()
    os.symlink(secret, _shard(model))


def _zip_slip() -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../evil.txt", b"pwned")
        z.writestr("config.json", b"{}")
        z.writestr("model.weights.h5", b"")
    return buf.getvalue()


def _existing_output(kind: str):
    def wrap(build):
        def inner(fx: Path, work: Path) -> Case:
            case = build(fx, work)
            if kind == "file":
                case.output.write_bytes(b"precious")
            else:
                _write(case.output / "keep.txt", b"precious")
            return case

        return inner

    return wrap


def _with_metadata(content: bytes | None, spec: str = "meta:{path}"):
    def build(fx: Path, work: Path) -> Case:
        base = _h5()(fx, work)
        path = work / "meta.json"
        if content is not None:
            _write(path, content)
        base.args.insert(0, "--metadata=" + spec.format(path=path))
        return base

    return build


def _plain(args_fn):
    def build(fx: Path, work: Path) -> Case:
        src = _copy(fx, "tiny.h5", work)
        return Case(args_fn(src, work / "out"), work / "out", [src])

    return build


def _retarget(case: Case, input: Path | None = None, output: Path | None = None) -> Case:
    """The same case with another input (second-to-last arg) and/or output (last arg)."""
    args = list(case.args)
    if input is not None:
        args[-2] = str(input)
    if output is not None:
        args[-1] = str(output)
    return Case(args, output or case.output, case.inputs + ([input] if input else []))


def _hostile_root(fx: Path) -> Path:
    """The hostile corpus (tests/python/hostile_models.py), built on first use."""
    root = fx / "hostile"
    if not (root / "models.json").exists():
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO / "converter"))
        subprocess.run(
            [PYTHON, str(REPO / "tests" / "python" / "hostile_models.py"), str(root)],
            check=True,
            env=env,
            capture_output=True,
        )
    return root


def _hostile(name: str, fmt: str, *extra: str):
    """A copy of hostile model ``name`` (symlinks kept) converted as ``fmt``."""

    def build(fx: Path, work: Path) -> Case:
        root = _hostile_root(fx)
        src = Path(json.loads((root / "models.json").read_text())[name])
        dst = work / src.name
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copyfile(src, dst)
        return Case([f"--input_format={fmt}", *extra, str(dst), str(work / "out")], work / "out", [dst])

    return build


@dataclasses.dataclass
class Row:
    id: str
    build: Callable[[Path, Path], Case]
    stderr: str  # regex searched in the single error line
    exit_code: int | None = None
    xfail: str | None = None
    slow: bool = False  # imports TensorFlow in the CLI (several seconds per row)
    sentinel: str | None = None  # a hostile model's file that must never appear


def _refused(ops: str) -> str:
    return rf"refusing to load .*: ops not allowed in a model to convert: {ops}.*nothing was run"


_GRAPH = "--output_format=tfjs_graph_model"
# Hostile models (tests/python/hostile_models.py): each would write a sentinel file,
# read a file outside the model, or exhaust memory if TensorFlow loaded it unchecked.
HOSTILE_ROWS: list[Row] = [
    Row(
        "hostile_sm_init_write_file",
        _hostile("sm_init_write_file", "tf_saved_model"),
        _refused(r"WriteFile \(in __inference__initializer_\d+\)"),
        slow=True,
        sentinel="sm_init_write_file",
    ),
    Row(
        "hostile_hub_init_write_file",
        _hostile("sm_init_write_file", "tf_hub"),
        _refused("WriteFile"),
        slow=True,
        sentinel="sm_init_write_file",
    ),
    Row(
        "hostile_keras_sm_init_write_file",
        _hostile("sm_init_write_file", "keras_saved_model"),
        _refused("WriteFile"),
        slow=True,
        sentinel="sm_init_write_file",
    ),
    Row(
        "hostile_sm_init_print_to_file",
        _hostile("sm_init_print_to_file", "tf_saved_model"),
        _refused(r"PrintV2 \(in __inference__initializer"),
        slow=True,
        sentinel="sm_init_print_to_file",
    ),
    Row(
        "hostile_sm_init_read_file",
        _hostile("sm_init_read_file", "tf_saved_model"),
        _refused("ReadFile"),
        slow=True,
    ),
    Row(
        "hostile_sm_init_list_files",
        _hostile("sm_init_list_files", "tf_saved_model"),
        _refused("MatchingFiles"),
        slow=True,
    ),
    Row(
        "hostile_sm_py_function",
        _hostile("sm_py_function", "tf_saved_model"),
        _refused(r"EagerPyFunc \(in __inference___call__"),
        slow=True,
    ),
    Row(
        "hostile_sm_init_table_reads_outside",
        _hostile("sm_init_read_outside", "tf_saved_model"),
        r"InitializeTableFromTextFileV2 in __inference__initializer_\d+ reads the constant path '/.*secret\.txt', "
        r"not a file of the SavedModel",
        slow=True,
    ),
    Row(
        "hostile_sm_asset_dotdot",
        _hostile("sm_asset_dotdot", "tf_saved_model"),
        r"asset path '\.\./\.\./\.\./secret\.txt' is not a file inside its assets directory",
        slow=True,
    ),
    Row(
        "hostile_sm_asset_absolute",
        _hostile("sm_asset_absolute", "tf_saved_model"),
        r"asset path '/.*secret\.txt' is not a file inside its assets directory",
        slow=True,
    ),
    Row(
        "hostile_sm_asset_symlink",
        _hostile("sm_asset_symlink", "tf_saved_model"),
        r"asset 'vocab\.txt' resolves outside the model directory",
        slow=True,
    ),
    Row(
        "hostile_sm_fill_bomb",
        _hostile("sm_fill_bomb", "tf_saved_model"),
        r"Fill allocating 68719476736 bytes",
        slow=True,
    ),
    Row(
        "hostile_sm_const_bomb",
        _hostile("sm_const_bomb", "tf_saved_model"),
        r"a constant that expands to 274877906944 bytes",
        slow=True,
    ),
    Row(
        "hostile_sm_cyclic_functions",
        _hostile("sm_cyclic_functions", "tf_saved_model"),
        r"the function library is cyclic \(cycle_[ab] calls cycle_[ab]\)",
        slow=True,
    ),
    Row(
        "hostile_sm_deep_functions",
        _hostile("sm_deep_functions", "tf_saved_model"),
        r"function calls nest deeper than 64 levels",
        slow=True,
    ),
    Row(
        "hostile_sm_variables_truncated",
        _hostile("sm_variables_truncated", "tf_saved_model"),
        r"its variables declare 12 bytes but the data files hold 4",
        slow=True,
    ),
    Row(
        "hostile_frozen_write_file",
        _hostile("frozen_write_file", "tf_frozen_model", "--output_node_names=out"),
        _refused(r"WriteFile \(in the graph\)"),
        slow=True,
        sentinel="frozen_write_file",
    ),
    Row(
        "hostile_frozen_fill_bomb",
        _hostile("frozen_fill_bomb", "tf_frozen_model", "--output_node_names=out"),
        r"Fill allocating 68719476736 bytes \(Fill in the graph\)",
        slow=True,
    ),
    Row(
        "hostile_h5_dataset_bomb",
        _hostile("h5_dataset_bomb", "keras"),
        r"datasets declare more bytes than the file holds .*kernel",
        slow=True,
    ),
    Row(
        "hostile_h5_dataset_bomb_graph",
        _hostile("h5_dataset_bomb", "keras", _GRAPH),
        r"datasets declare more bytes than the file holds .*kernel",
        slow=True,
    ),
    Row(
        "hostile_keras_zip_bomb",
        _hostile("keras_zip_bomb", "keras_keras"),
        r"zip entry 'model\.weights\.h5' expands \d+ bytes to 1073741824 \(a zip bomb\?\)",
        slow=True,
    ),
    Row(
        "hostile_keras_zip_bomb_graph",
        _hostile("keras_zip_bomb", "keras_keras", _GRAPH),
        r"zip entry 'model\.weights\.h5' expands \d+ bytes to 1073741824",
        slow=True,
    ),
]


ROWS: list[Row] = [
    # --- Keras HDF5 inputs
    Row(
        "h5_missing",
        _plain(lambda s, o: ["--input_format=keras", str(s.parent / "nope.h5"), str(o)]),
        r"does not exist.*nope\.h5",
    ),
    Row("h5_empty", _h5(lambda b: b""), r"tiny\.h5"),
    Row("h5_truncated", _h5(lambda b: b[: len(b) // 2]), r"tiny\.h5"),
    Row("h5_corrupt_bytes", _h5(lambda b: b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8), r"tiny\.h5"),
    Row("h5_is_text", _h5(lambda b: b"this is not a model\n"), r"tiny\.h5"),
    Row(
        "h5_is_directory",
        _plain(lambda s, o: ["--input_format=keras", str(s.parent), str(o)]),
        r"(director|HDF5|h5)",
    ),
    # --- Keras 3 .keras zips
    Row("keras_empty", _keras_zip(raw=b""), r"model\.keras"),
    Row("keras_not_zip", _keras_zip(raw=b"PK\x03\x04 definitely not a zip"), r"model\.keras"),
    Row(
        "keras_truncated",
        lambda fx, w: _keras_zip(raw=(fx / "tiny.keras").read_bytes()[:200])(fx, w),
        r"model\.keras",
    ),
    Row("keras_no_config", _keras_zip(members={"config.json": None}), r"config\.json"),
    Row("keras_config_not_json", _keras_zip(members={"config.json": b"{not json"}), r"config\.json"),
    Row("keras_weights_corrupt", _keras_zip(members={"model.weights.h5": b"garbage"}), r"weights"),
    Row("keras_zip_slip", _keras_zip(raw=_zip_slip()), r"(\.\./evil\.txt|unsafe|outside|member)"),
    # --- SavedModel / frozen graph inputs
    Row(
        "sm_empty_dir",
        _saved_model(
            lambda sm: [p.unlink() if p.is_file() else shutil.rmtree(p) for p in list(sm.iterdir())]
        ),
        r"saved_model\.pb",
        slow=True,
    ),
    Row(
        "sm_corrupt_pb",
        _saved_model(lambda sm: (sm / "saved_model.pb").write_bytes(b"\xff garbage")),
        r"saved_model\.pb",
        slow=True,
    ),
    Row(
        "sm_empty_pb",
        _saved_model(lambda sm: (sm / "saved_model.pb").write_bytes(b"")),
        r"(saved_model|MetaGraph|tag|signature)",
        slow=True,
    ),
    Row(
        "sm_missing_variables",
        _saved_model(lambda sm: shutil.rmtree(sm / "variables")),
        r"(variables|checkpoint|restore)",
        slow=True,
    ),
    Row("sm_wrong_tags", _saved_model(extra=("--saved_model_tags=nope",)), r"nope", slow=True),
    Row("sm_wrong_signature", _saved_model(extra=("--signature_name=nope",)), r"nope", slow=True),
    Row("frozen_corrupt", _frozen(b"\xff\xfe garbage"), r"frozen\.pb", slow=True),
    Row("frozen_missing_output_nodes", _frozen(b"", extra=()), r"output_node_names is required", exit_code=2),
    Row("frozen_unknown_output_node", _frozen(b""), r"\bout\b", slow=True),
    # --- wrong input formats
    Row("wrong_format_sm_as_keras", _saved_model(fmt="keras"), r"(sm|HDF5|h5)"),
    Row(
        "wrong_format_h5_as_saved_model",
        _h5(fmt="tf_saved_model"),
        r"(tiny\.h5|saved_model|SavedModel)",
        slow=True,
    ),
    Row(
        "wrong_format_keras_zip_as_layers",
        lambda fx, w: Case(
            [
                "--input_format=tfjs_layers_model",
                "--output_format=tfjs_layers_model",
                str(_copy(fx, "tiny.keras", w)),
                str(w / "out"),
            ],
            w / "out",
            [w / "tiny.keras"],
        ),
        r"tiny\.keras",
    ),
    Row(
        "wrong_format_h5_as_layers",
        _h5(fmt="tfjs_layers_model", extra=("--output_format=tfjs_layers_model",)),
        r"tiny\.h5",
    ),
    # --- flags
    Row("unknown_input_format", _h5(fmt="bogus"), r"input_format", exit_code=2),
    Row("unsupported_pair", _h5(extra=("--output_format=keras",)), r"keras -> keras", exit_code=2),
    Row(
        "shard_size_zero",
        _h5(extra=("--weight_shard_size_bytes=0",)),
        r"weight_shard_size_bytes",
        exit_code=2,
    ),
    Row(
        "shard_size_negative",
        _h5(extra=("--weight_shard_size_bytes=-4",)),
        r"weight_shard_size_bytes",
        exit_code=2,
    ),
    Row(
        "shard_size_not_int",
        _h5(extra=("--weight_shard_size_bytes=4MB",)),
        r"weight_shard_size_bytes",
        exit_code=2,
    ),
    Row("quantization_bytes_3", _h5(extra=("--quantization_bytes=3",)), r"quantization_bytes", exit_code=2),
    Row(
        "quantize_conflicting_patterns",
        _h5(extra=("--quantize_uint8=d/*", "--quantize_float16=*kernel")),
        r"Two quantization dtypes float16, uint8 match the same weight d/kernel",
    ),
    Row(
        "quantize_two_fallthroughs",
        _h5(extra=("--quantize_uint8", "--quantize_float16")),
        r"(more than one|More than one)",
        exit_code=2,
    ),
    Row(
        "quantize_pattern_matches_nothing",
        _h5(extra=("--quantize_uint8=D/*",)),
        r"pattern 'D/\*' \(for uint8\) matches no weight",
    ),
    Row(
        "quantize_nan_weights",
        lambda fx, w: Case(
            ["--input_format=keras", "--quantize_uint8", str(_copy(fx, "nan.h5", w)), str(w / "out")],
            w / "out",
            [w / "nan.h5"],
        ),
        r"weight d/(kernel|bias) contains NaN or Infinity",
    ),
    Row("metadata_missing_file", _with_metadata(None), r"metadata.*meta\.json"),
    Row("metadata_not_json", _with_metadata(b"{oops"), r"metadata.*meta\.json.*JSON"),
    Row("metadata_bad_spec", _with_metadata(b"{}", spec="{path}"), r"--metadata", exit_code=2),
    Row("metadata_nan", _with_metadata(b'{"x": NaN}'), r"(NaN|metadata)"),
    Row(
        "missing_output_path",
        _plain(lambda s, o: ["--input_format=keras", str(s)]),
        r"output_path",
        exit_code=2,
    ),
    Row("missing_input_path", _plain(lambda s, o: ["--input_format=keras"]), r"input_path", exit_code=2),
    Row(
        "signature_name_for_keras",
        _h5(extra=("--signature_name=x",)),
        r"signature_name applies only to the tf_hub or tf_saved_model input format",
        exit_code=2,
    ),
    # --- outputs
    Row("output_is_a_file", _existing_output("file")(_h5()), r"not a directory"),
    Row("output_dir_not_empty", _existing_output("dir")(_h5()), r"(--overwrite|not empty|exists)"),
    Row(
        "output_is_input_dir_with_overwrite",
        lambda fx, w: _retarget(_layers(extra=("--overwrite",))(fx, w), output=w / "layers"),
        r"(inside|overlap|same|input)",
    ),
    Row(
        "output_contains_input_with_overwrite",
        lambda fx, w: _retarget(_layers(extra=("--overwrite",))(fx, w), output=w),
        r"(inside|overlap|same|input)",
    ),
    # --- tfjs layers model inputs
    Row(
        "layers_dir_without_model_json",
        lambda fx, w: _retarget(_layers()(fx, w), input=_write(w / "empty" / "x.txt", b"").parent),
        r"model\.json",
    ),
    Row("layers_model_json_missing", _layers(lambda m, o: (m / "model.json").unlink()), r"model\.json"),
    Row(
        "layers_model_json_not_json",
        _layers(lambda m, o: _write(m / "model.json", b"{,") and None),
        r"model\.json.*not valid JSON",
    ),
    Row("layers_model_json_is_list", _layers(lambda m, o: [o]), r"not a JSON object"),
    Row(
        "layers_no_weights_manifest",
        _layers(lambda m, o: {k: v for k, v in o.items() if k != "weightsManifest"}),
        r"weightsManifest",
    ),
    Row("layers_given_graph_model", _layers(_set_manifest(["format"], "graph-model")), r"graph.model"),
    Row("layers_shard_missing", _layers(_remove_shard), r"group 1.*group1-shard1of1\.bin.*missing"),
    Row("layers_shard_truncated", _layers(_truncate_shard), r"group 1.*bytes"),
    Row("layers_shard_too_long", _layers(_extend_shard), r"group 1.*bytes"),
    Row("layers_shard_count_mismatch", _layers(_split_shard_count), r"group1-shard2of2\.bin.*missing"),
    Row(
        "layers_byte_length_mismatch",
        _layers(_set_manifest(["weightsManifest", 0, "weights", 0, "shape"], [3, 3])),
        r"group 1.*bytes",
    ),
    Row(
        "layers_huge_shape",
        _layers(_set_manifest(["weightsManifest", 0, "weights", 0, "shape"], [2**40, 2**40])),
        r"group 1.*bytes",
    ),
    Row(
        "layers_path_traversal",
        _layers(_set_manifest(["weightsManifest", 0, "paths"], ["../secret.bin"])),
        r"outside the model directory",
    ),
    Row(
        "layers_absolute_path",
        _layers(_set_manifest(["weightsManifest", 0, "paths"], ["/etc/passwd"])),
        r"outside the model directory",
    ),
    Row("layers_symlink_escape", _layers(_escape_symlink), r"resolves outside the model directory"),
    # --follow_symlinks (what the Bazel tool passes: sandboxes stage inputs as symlinks)
    # trusts symlinks, never '..' or absolute manifest paths.
    Row(
        "layers_traversal_follow_symlinks",
        _layers(
            _set_manifest(["weightsManifest", 0, "paths"], ["../secret.bin"]), extra=("--follow_symlinks",)
        ),
        r"outside the model directory",
    ),
    Row(
        "layers_bad_dtype",
        _layers(_set_manifest(["weightsManifest", 0, "weights", 0, "dtype"], "float64")),
        r"unsupported dtype 'float64'",
    ),
    Row(
        "layers_nan_quantize", _layers(_nan_shard, extra=("--quantize_uint16",)), r"contains NaN or Infinity"
    ),
]

ROWS += HOSTILE_ROWS
ROW_IDS = [r.id for r in ROWS]
assert len(set(ROW_IDS)) == len(ROW_IDS)


def _param(row: Row):
    marks = [pytest.mark.xfail(strict=False, reason=row.xfail)] if row.xfail else []
    if row.slow:
        marks.append(pytest.mark.slow)
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_bad_input(row: Row, fixtures: Path, tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    case = row.build(fixtures, work)
    watched = list(case.inputs) + [case.output]
    before = {str(p): _tree_hash(p) for p in watched}
    listing = sorted(os.listdir(case.output.parent)) if case.output.parent.exists() else None

    done = _run_cli(case.args, work)

    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and not _TF_NOISE.match(line)]
    assert done.returncode != 0, f"expected failure, got success; stderr: {done.stderr}"
    if row.exit_code is not None:
        assert done.returncode == row.exit_code, done.stderr
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n" + "\n".join(lines)
    assert lines[0].startswith("tensorflowjs_converter: error: "), lines[0]
    assert re.search(row.stderr, lines[0]), f"{row.stderr!r} not in {lines[0]!r}"
    after = {str(p): _tree_hash(p) for p in watched}
    assert after == before, "an input or the output path changed"
    assert done.max_rss < MAX_RSS_BYTES, f"peak RSS {done.max_rss} bytes"
    if row.sentinel is not None:
        assert not (_hostile_root(fixtures) / "sentinels" / row.sentinel).exists(), "the model ran code"
    if listing is not None:
        assert sorted(os.listdir(case.output.parent)) == listing, "files left behind next to the output"


# ---------------------------------------------------------------------------- must succeed


@pytest.mark.parametrize("dirname", ["with space", "ünïcødé ✓", "sp ace/ñ"])
def test_unicode_and_spaces_succeed(dirname: str, fixtures: Path, tmp_path: Path):
    src = _copy(fixtures, "tiny.h5", tmp_path / dirname, "módel 1.h5")
    out = tmp_path / dirname / "out dir ü"
    done = _run_cli(["--input_format=keras", "--quantize_uint8", str(src), str(out)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ["group1-shard1of1.bin", "model.json"]
    # and back: the layers model in a Unicode directory converts again
    again = _run_cli(
        [
            "--input_format=tfjs_layers_model",
            "--output_format=tfjs_layers_model",
            str(out / "model.json"),
            str(tmp_path / dirname / "again ✓"),
        ],
        tmp_path,
    )
    assert again.returncode == 0, again.stderr


def test_follow_symlinks_reads_a_symlinked_shard(fixtures: Path, tmp_path: Path):
    """The symlink the escape row refuses is read with --follow_symlinks: same output as
    the model whose shard is a plain file."""
    linked = _layers(_escape_symlink, extra=("--follow_symlinks",))(fixtures, tmp_path / "a")
    plain = _layers()(fixtures, tmp_path / "b")
    for case in (linked, plain):
        done = _run_cli(case.args, tmp_path)
        assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(linked.output)) == sorted(os.listdir(plain.output))
    for name in os.listdir(plain.output):
        assert (linked.output / name).read_bytes() == (plain.output / name).read_bytes(), name


def test_overwrite_replaces_non_empty_output(fixtures: Path, tmp_path: Path):
    src = _copy(fixtures, "tiny.h5", tmp_path)
    _write(tmp_path / "out" / "stale.bin", b"old")
    done = _run_cli(["--input_format=keras", "--overwrite", str(src), str(tmp_path / "out")], tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["group1-shard1of1.bin", "model.json"]


@pytest.mark.slow
def test_no_tensorflow_log_noise(fixtures: Path, tmp_path: Path):
    case = _saved_model(lambda sm: (sm / "saved_model.pb").write_bytes(b"\xff garbage"))(fixtures, tmp_path)
    env = {k: None for k in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    done = _run_cli(case.args, tmp_path, env_extra=env)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
