"""Input files are checked once per conversion, not once per weight.

Streaming conversions read each large weight when it is written. Work that belongs to
the whole file (the h5 size check that visits every object, parsing a ``.keras`` zip's
central directory, sizing a tfjs model's shards) must not be repeated per weight: on
MobileNetV2 (262 weights) the repeated h5 visit made h5 -> layers 10x slower.

These tests count the file-level work of one conversion, deterministically: for each
path, a model with many large weights must do exactly as much of it as a model with
few, and the h5 size check must run once per file.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tfjsconv import api, weight_reader
from tfjsconv.layers import h5_files, keras_files
from tfjsconv.options import ConversionOptions

# Dense kernels of 200 x 100 float32 (80 KB) are above h5_files.LAZY_MIN_BYTES, so
# each is read when written; the test models have FEW or MANY of them.
FEW, MANY = 2, 9
assert 200 * 100 * 4 >= h5_files.LAZY_MIN_BYTES


class Counter:
    """Counts calls of wrapped callables, by label."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def wrap(self, label: str, fn: Callable, when: Callable[..., bool] = lambda *a, **k: True) -> Callable:
        def counted(*args, **kwargs):
            if when(*args, **kwargs):
                self.counts[label] = self.counts.get(label, 0) + 1
            return fn(*args, **kwargs)

        return counted


def _count_h5_work(monkeypatch) -> Counter:
    import h5py._hl.files as h5files  # h5py.File itself must stay a class (isinstance checks)

    counter = Counter()
    monkeypatch.setattr(h5_files, "check_h5_sizes", counter.wrap("size check", h5_files.check_h5_sizes))
    monkeypatch.setattr(h5files, "make_fid", counter.wrap("h5 open", h5files.make_fid))
    monkeypatch.setattr(zipfile, "ZipFile", counter.wrap("zip parse", zipfile.ZipFile))
    return counter


def _dense_stack(keras_module, path: Path, layers: int) -> str:
    """``layers`` Dense layers of 200x200 (the last 200x100) saved to ``path`` by
    ``keras_module`` (tf_keras writes an h5, Keras 3 a ``.keras`` zip)."""
    keras_module.utils.set_random_seed(1)
    model = keras_module.Sequential(
        [keras_module.Input((200,), name="x")]
        + [keras_module.layers.Dense(200 if i < layers - 1 else 100, name=f"d{i}") for i in range(layers)]
    )
    model.save(str(path))
    return str(path)


def _tf_keras_h5(path: Path, layers: int) -> str:
    import tf_keras

    return _dense_stack(tf_keras, path, layers)


def _keras3_zip(path: Path, layers: int) -> str:
    import keras

    return _dense_stack(keras, path, layers)


def _convert_counting(
    monkeypatch, src: str, out: Path, input_format: str, output_format: str
) -> dict[str, int]:
    with monkeypatch.context() as m:
        counter = _count_h5_work(m)
        api.convert(src, str(out), ConversionOptions(input_format=input_format, output_format=output_format))
    assert (out / "model.json").is_file()
    return counter.counts


@pytest.mark.parametrize("output_format", ["tfjs_layers_model", "tfjs_graph_model"])
@pytest.mark.parametrize(("build", "input_format"), [(_tf_keras_h5, "keras"), (_keras3_zip, "keras_keras")])
def test_keras_file_is_checked_once(tmp_path, monkeypatch, build, input_format, output_format):
    """h5 / .keras -> layers or graph: one size check, and the same number of h5 opens
    and zip parses for 9 large weights as for 2."""
    suffix = ".h5" if input_format == "keras" else ".keras"
    counts = {}
    for n in (FEW, MANY):
        src = build(tmp_path / f"m{n}{suffix}", n)
        counts[n] = _convert_counting(monkeypatch, src, tmp_path / f"out{n}", input_format, output_format)
    assert counts[MANY]["size check"] == 1, counts
    assert counts[MANY] == counts[FEW], counts


def test_lazy_reads_share_one_handle(tmp_path, monkeypatch):
    """The H5Weights of one file open it once between them, and their values are the
    file's (read back with h5py independently of the reader)."""
    import h5py

    src = _tf_keras_h5(tmp_path / "m.h5", MANY)
    model = keras_files.read_h5(src, lazy=True)
    lazy = [(n, w) for _, ws in model.layers for n, w in ws if isinstance(w, h5_files.H5Weight)]
    assert len(lazy) == MANY
    with monkeypatch.context() as m:
        counter = _count_h5_work(m)
        values = [w.read() for _, w in lazy]
    assert counter.counts == {"h5 open": 1}
    with h5py.File(src, "r") as f:
        for i, value in enumerate(values):
            np.testing.assert_array_equal(value, f[f"model_weights/d{i}/d{i}/kernel:0"][()])


def test_lazy_read_refuses_a_dataset_that_changed(tmp_path):
    """A dataset re-declared larger after the size check is refused before it is read:
    the per-read check is what bounds memory once the file check is not repeated."""
    import h5py

    src = _tf_keras_h5(tmp_path / "m.h5", FEW)
    model = keras_files.read_h5(src, lazy=True)
    ((_, (kernel, _)),) = [layer for layer in model.layers if layer[0] == "d0"]
    assert isinstance(kernel[1], h5_files.H5Weight)
    with h5py.File(src, "r+") as f:
        del f["model_weights/d0/d0/kernel:0"]
        f.create_dataset("model_weights/d0/d0/kernel:0", shape=(10**6, 10**6), dtype="float32", chunks=True)
    with pytest.raises(keras_files.ConversionError, match="'d0/kernel:0' changed while converting"):
        kernel[1].read()


def _layers_model(tmp_path: Path, n: int) -> Path:
    """A tfjs layers model of ``n`` large weights in 64 KB shards (the h5 path writes it)."""
    src = _tf_keras_h5(tmp_path / f"src{n}.h5", n)
    out = tmp_path / f"layers{n}"
    api.convert(src, str(out), ConversionOptions(input_format="keras", weight_shard_size_bytes=1 << 16))
    return out


def test_tfjs_shards_are_sized_once(tmp_path, monkeypatch):
    """layers -> layers: each shard file is sized once per conversion, not once per
    weight that lies after it."""
    for n in (FEW, MANY):
        src = _layers_model(tmp_path, n)
        shards = sorted(p.name for p in src.iterdir() if p.suffix == ".bin")
        sized: list[str] = []
        real = os.path.getsize

        def getsize(path, sized=sized, real=real):
            if str(path).endswith(".bin"):
                sized.append(os.path.basename(path))
            return real(path)

        with monkeypatch.context() as m:
            m.setattr(weight_reader.os.path, "getsize", getsize)
            api.convert(
                str(src / "model.json"),
                str(tmp_path / f"relayered{n}"),
                ConversionOptions(
                    input_format="tfjs_layers_model", output_format="tfjs_layers_model", quantize_uint8=True
                ),
            )
        assert sorted(sized) == shards, (n, len(shards))
