"""progress.py: reporter choice by stream, and summaries of hand-written outputs."""

from __future__ import annotations

import io
import json

from tfjsconv import progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _clock(values):
    it = iter(values)
    return lambda: next(it)


def test_tty_stream_gets_step_lines_with_elapsed_seconds():
    out = _Tty()
    rep = progress.for_stream(out, clock=_clock([10.0, 10.25, 12.5]))
    rep.step("loading")
    rep.step("writing weights")
    assert out.getvalue() == "[   0.2s] loading\n[   2.5s] writing weights\n"


def test_non_tty_stream_is_quiet():
    out = io.StringIO()
    rep = progress.for_stream(out)
    rep.step("loading")
    rep.summary("/nonexistent")
    assert out.getvalue() == ""


def test_quiet_flag_overrides_detection():
    tty = _Tty()
    progress.for_stream(tty, quiet=True).step("x")
    assert tty.getvalue() == ""
    plain = io.StringIO()
    progress.for_stream(plain, quiet=False, clock=_clock([0.0, 1.0])).step("x")
    assert plain.getvalue() == "[   1.0s] x\n"


def test_human_size():
    assert progress.human_size(0) == "0 B"
    assert progress.human_size(1023) == "1023 B"
    assert progress.human_size(1536) == "1.5 KiB"
    assert progress.human_size(4 * 1024 * 1024) == "4.0 MiB"


def _write(tmp_path, model_json, shards):
    (tmp_path / "model.json").write_text(json.dumps(model_json))
    for name, size in shards.items():
        (tmp_path / name).write_bytes(b"\0" * size)


def test_summarize_graph_model(tmp_path):
    model_json = {
        "format": "graph-model",
        "modelTopology": {
            "node": [
                {"name": "x", "op": "Placeholder"},
                {"name": "w", "op": "Const"},
                {"name": "y", "op": "MatMul"},
                {"name": "b", "op": "Const"},
            ],
            "library": {"function": [{"nodeDef": [{"name": "r", "op": "Relu"}]}]},
        },
        "weightsManifest": [
            {
                "paths": ["group1-shard1of1.bin"],
                "weights": [
                    {
                        "name": "w",
                        "shape": [2, 2],
                        "dtype": "float32",
                        "quantization": {
                            "dtype": "uint8",
                            "min": 0.0,
                            "scale": 1.0,
                            "original_dtype": "float32",
                        },
                    },
                    {
                        "name": "b",
                        "shape": [2],
                        "dtype": "float32",
                        "quantization": {"dtype": "float16", "original_dtype": "float32"},
                    },
                ],
            }
        ],
    }
    _write(tmp_path, model_json, {"group1-shard1of1.bin": 8})
    text = progress.summarize(str(tmp_path))
    size_json = (tmp_path / "model.json").stat().st_size
    lines = text.splitlines()
    assert lines[0] == f"Wrote {tmp_path}:"
    assert lines[1].split() == ["group1-shard1of1.bin", "8", "B"]
    assert lines[2].split() == ["model.json", str(size_json), "B"]
    assert lines[3] == f"Total: {8 + size_json} B ({8 + size_json} bytes) in 2 files"
    assert lines[4] == "graph model: 5 nodes (4 op types)"
    assert lines[5] == "Quantization: float16, uint8"


def test_summarize_layers_model(tmp_path):
    model_json = {
        "format": "layers-model",
        "modelTopology": {
            "keras_version": "2.21.0",
            "model_config": {
                "class_name": "Sequential",
                "config": {
                    "name": "s",
                    "layers": [
                        {"class_name": "InputLayer"},
                        {"class_name": "Dense"},
                        {"class_name": "Dense"},
                    ],
                },
            },
        },
        "weightsManifest": [{"paths": [], "weights": []}],
    }
    _write(tmp_path, model_json, {})
    lines = progress.summarize(str(tmp_path)).splitlines()
    assert lines[-2] == "layers model: 3 layers"
    assert lines[-1] == "Quantization: none"


def test_summarize_single_file_output(tmp_path):
    f = tmp_path / "model.h5"
    f.write_bytes(b"\0" * 3000)
    lines = progress.summarize(str(f)).splitlines()
    assert lines[1].split() == ["model.h5", "2.9", "KiB"]
    assert lines[2] == "Total: 2.9 KiB (3000 bytes) in 1 file"
