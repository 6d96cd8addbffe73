"""Byte-level format of weight shards and the weightsManifest, checked against hand-computed bytes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tfjsconv.errors import ConversionError
from tfjsconv.weights import read_weights, write_weights


def _group_bytes(out_dir, entry):
    return b"".join(open(os.path.join(out_dir, p), "rb").read() for p in entry["paths"])


def _write_one(tmp_path, name, array, **kw):
    manifest = write_weights([[(name, array)]], str(tmp_path), **kw)
    return manifest, _group_bytes(str(tmp_path), manifest[0])


@pytest.mark.parametrize(
    "array, dtype, expected",
    [
        (np.array([1.0], np.float32), "float32", "0000803f"),
        (np.array([1.0, -2.0], np.float32), "float32", "0000803f000000c0"),
        (np.array([1, -1], np.int32), "int32", "01000000ffffffff"),
        (np.array([True, False, True]), "bool", "010001"),
        (np.array([1 + 2j], np.complex64), "complex64", "0000803f00000040"),
        # auto-conversions
        (np.array([1.0], np.float64), "float32", "0000803f"),
        (np.array([1.0], np.float16), "float32", "0000803f"),
        (np.array([258], np.int64), "int32", "02010000"),
        (np.array([1 + 2j], np.complex128), "complex64", "0000803f00000040"),
        # explicitly big-endian input must still come out little-endian
        (np.array([1.0], ">f4"), "float32", "0000803f"),
        (np.array([1], ">i4"), "int32", "01000000"),
        (np.array(["a", "b"]), "string", "01000000610100000062"),
        (np.array([b"a", b""], dtype=object), "string", "010000006100000000"),
        (np.array(["é"]), "string", "02000000c3a9"),
    ],
)
def test_dtype_bytes(tmp_path, array, dtype, expected):
    manifest, data = _write_one(tmp_path, "w", array)
    entry = manifest[0]["weights"][0]
    assert list(entry) == ["name", "shape", "dtype"]
    assert entry == {"name": "w", "shape": list(array.shape), "dtype": dtype}
    assert data.hex() == expected


def test_scalar_and_c_order(tmp_path):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3).T  # Fortran-ordered view
    manifest, data = _write_one(tmp_path, "w", arr)
    assert manifest[0]["weights"][0]["shape"] == [3, 2]
    assert np.frombuffer(data, "<f4").tolist() == [0, 3, 1, 4, 2, 5]
    (tmp_path / "s").mkdir()
    manifest, data = _write_one(tmp_path / "s", "s", np.float32(2.0))
    assert manifest[0]["weights"][0]["shape"] == []
    assert data.hex() == "00000040"


def test_sharding_straddles_and_names(tmp_path):
    a = np.arange(3, dtype=np.float32)  # 12 bytes
    b = np.arange(2, dtype=np.int32)  # 8 bytes
    manifest = write_weights(
        [[("a", a), ("b", b)], [], [("c", np.ones(1, np.float32))]], str(tmp_path), shard_size_bytes=7
    )
    assert manifest[0]["paths"] == [f"group1-shard{i}of3.bin" for i in (1, 2, 3)]
    sizes = [os.path.getsize(tmp_path / p) for p in manifest[0]["paths"]]
    assert sizes == [7, 7, 6]
    assert _group_bytes(str(tmp_path), manifest[0]) == a.tobytes() + b.astype("<i4").tobytes()
    assert manifest[1] == {"paths": [], "weights": []}
    assert manifest[2]["paths"] == ["group3-shard1of1.bin"]
    assert sorted(os.listdir(tmp_path)) == sorted(manifest[0]["paths"] + manifest[2]["paths"])


def test_exact_multiple_of_shard_size(tmp_path):
    manifest = write_weights([[("a", np.zeros(4, np.float32))]], str(tmp_path), shard_size_bytes=8)
    assert manifest[0]["paths"] == ["group1-shard1of2.bin", "group1-shard2of2.bin"]
    assert [os.path.getsize(tmp_path / p) for p in manifest[0]["paths"]] == [8, 8]


def test_default_shard_size_is_4mib(tmp_path):
    manifest = write_weights([[("a", np.zeros(1024 * 1024 + 1, np.float32))]], str(tmp_path))
    assert [os.path.getsize(tmp_path / p) for p in manifest[0]["paths"]] == [4194304, 4]


def test_zero_size_weight_group_has_no_shards(tmp_path):
    manifest = write_weights([[("e", np.zeros((0, 3), np.float32))]], str(tmp_path))
    assert manifest == [{"paths": [], "weights": [{"name": "e", "shape": [0, 3], "dtype": "float32"}]}]
    assert read_weights(manifest, str(tmp_path))[0][1].shape == (0, 3)


def test_duplicate_names_rejected(tmp_path):
    with pytest.raises(ConversionError, match="duplicate weight name a"):
        write_weights([[("a", np.ones(1))], [("a", np.ones(1))]], str(tmp_path))


def test_int64_out_of_range_rejected(tmp_path):
    with pytest.raises(ConversionError, match=r"weight big has int64 values outside the int32 range"):
        write_weights([[("big", np.array([2**31], np.int64))]], str(tmp_path))


@pytest.mark.parametrize(
    "array", [np.array([1], "datetime64[s]"), np.zeros(1, [("x", "<f4")]), np.array([object()], dtype=object)]
)
def test_unsupported_dtype_names_weight(tmp_path, array):
    with pytest.raises(ConversionError, match=r"weight odd has dtype"):
        write_weights([[("odd", array)]], str(tmp_path))


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "4"])
def test_bad_shard_size(tmp_path, size):
    with pytest.raises(ConversionError, match="shard size must be a positive integer"):
        write_weights([[("a", np.ones(1, np.float32))]], str(tmp_path), shard_size_bytes=size)


def test_writer_does_not_print(tmp_path, capsys):
    write_weights([[("a", np.ones(2, np.float64)), ("i", np.ones(2, np.int64))]], str(tmp_path))
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------- round trips


ROUND_TRIP = [
    ("f32", np.array([[1.5, -2.25], [0.0, 3.0]], np.float32)),
    ("i32", np.array([-7, 0, 2**31 - 1], np.int32)),
    ("bool", np.array([[True], [False]])),
    ("c64", np.array([1 - 1j, 0.5j], np.complex64)),
    ("str", np.array([["héllo", ""], ["x", "yz"]])),
    ("scalar", np.float32(-0.5)),
]


def test_round_trip_every_dtype_across_shards(tmp_path):
    manifest = write_weights([ROUND_TRIP[:3], ROUND_TRIP[3:]], str(tmp_path), shard_size_bytes=3)
    back = read_weights(manifest, str(tmp_path))
    assert [n for n, _ in back] == [n for n, _ in ROUND_TRIP]
    for (name, want), (_, got) in zip(ROUND_TRIP, back, strict=False):
        want = np.asarray(want)
        assert got.shape == want.shape, name
        if want.dtype.kind == "U":
            assert got.tolist() == want.tolist()
        else:
            assert got.dtype == want.dtype, name
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "qdtype, atol", [("uint8", 5.0 / 255 / 2 + 1e-6), ("uint16", 5.0 / 65535 / 2 + 1e-7), ("float16", 2e-3)]
)
def test_round_trip_quantized(tmp_path, qdtype, atol):
    rng = np.random.default_rng(0)
    w = rng.uniform(-2.0, 3.0, size=(7, 5)).astype(np.float32)
    w[0, 0], w[0, 1] = -2.0, 3.0
    ints = np.array([1, 2], np.int32)
    manifest = write_weights(
        [[("w", w), ("ints", ints)]], str(tmp_path), shard_size_bytes=16, quantization={qdtype: True}
    )
    entries = manifest[0]["weights"]
    assert entries[0]["quantization"]["dtype"] == qdtype
    assert "quantization" not in entries[1]  # int32 is never quantized
    back = dict(read_weights(manifest, str(tmp_path)))
    assert back["w"].dtype == np.float32
    np.testing.assert_allclose(back["w"], w, atol=atol, rtol=0)
    np.testing.assert_array_equal(back["ints"], ints)


def test_uint8_manifest_example(tmp_path):
    manifest, data = _write_one(
        tmp_path, "w", np.linspace(-2.5, 2.5, 6).astype(np.float32), quantization={"uint8": True}
    )
    q = manifest[0]["weights"][0]["quantization"]
    assert list(q) == ["dtype", "min", "scale", "original_dtype"]
    assert q == {
        "dtype": "uint8",
        "min": -2.5098039215686274,
        "scale": 0.0196078431372549,
        "original_dtype": "float32",
    }
    assert type(q["min"]) is float and type(q["scale"]) is float
    assert data.hex() == "0034669accff"


def test_float16_manifest_and_bytes(tmp_path):
    manifest, data = _write_one(
        tmp_path, "w", np.array([1.0, -2.0, 65504.0], np.float32), quantization={"float16": ("w",)}
    )
    q = manifest[0]["weights"][0]["quantization"]
    assert list(q) == ["dtype", "original_dtype"]
    assert q == {"dtype": "float16", "original_dtype": "float32"}
    assert data.hex() == "003c00c0ff7b"


def test_float64_is_quantized_after_auto_conversion(tmp_path):
    manifest, data = _write_one(tmp_path, "w", np.array([0.0, 1.0], np.float64), quantization={"uint8": True})
    assert manifest[0]["weights"][0]["dtype"] == "float32"
    assert manifest[0]["weights"][0]["quantization"]["dtype"] == "uint8"
    assert data.hex() == "00ff"


def test_nan_in_quantized_weight_rejected(tmp_path):
    with pytest.raises(ConversionError, match="weight bad contains NaN or Infinity"):
        write_weights(
            [[("ok", np.ones(2, np.float32)), ("bad", np.array([1, np.nan], np.float32))]],
            str(tmp_path),
            quantization={"uint8": True},
        )


def test_nan_allowed_when_not_quantized(tmp_path):
    manifest = write_weights([[("n", np.array([np.nan], np.float32))]], str(tmp_path))
    assert np.isnan(read_weights(manifest, str(tmp_path))[0][1][0])


def test_unmatched_pattern_rejected(tmp_path):
    with pytest.raises(ConversionError, match=r"pattern 'Dense\*' \(for uint8\) matches no weight"):
        write_weights(
            [[("dense/kernel", np.ones(2, np.float32))]], str(tmp_path), quantization={"uint8": ("Dense*",)}
        )


# ----------------------------------------------------------------------- reader hardening


def _good(tmp_path):
    manifest = write_weights([[("a", np.arange(4, dtype=np.float32))]], str(tmp_path), shard_size_bytes=8)
    return manifest


@pytest.mark.parametrize("bad", ["../x.bin", "/etc/passwd", "sub/../../x.bin", "..\\x.bin", "C:/x.bin"])
def test_path_traversal_refused(tmp_path, bad):
    manifest = _good(tmp_path)
    manifest[0]["paths"][0] = bad
    with pytest.raises(ConversionError, match="outside the model directory"):
        read_weights(manifest, str(tmp_path))


def test_symlink_out_of_dir_refused(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    manifest = _good(model)
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"\0" * 8)
    os.remove(model / "group1-shard1of2.bin")
    os.symlink(outside, model / "group1-shard1of2.bin")
    with pytest.raises(ConversionError, match="resolves outside the model directory"):
        read_weights(manifest, str(model))


def test_symlink_inside_dir_allowed(tmp_path):
    manifest = _good(tmp_path)
    os.rename(tmp_path / "group1-shard1of2.bin", tmp_path / "real.bin")
    os.symlink("real.bin", tmp_path / "group1-shard1of2.bin")
    assert read_weights(manifest, str(tmp_path))[0][1].tolist() == [0, 1, 2, 3]


def test_truncated_shard(tmp_path):
    manifest = _good(tmp_path)
    with open(tmp_path / "group1-shard2of2.bin", "r+b") as f:
        f.truncate(5)
    with pytest.raises(
        ConversionError, match=r"group 1: shards hold 13 bytes but the manifest declares at least 16"
    ):
        read_weights(manifest, str(tmp_path))


def test_too_long_shard(tmp_path):
    manifest = _good(tmp_path)
    with open(tmp_path / "group1-shard2of2.bin", "ab") as f:
        f.write(b"x")
    with pytest.raises(ConversionError, match=r"group 1: shards hold 17 bytes but the weights use 16"):
        read_weights(manifest, str(tmp_path))


def test_missing_shard(tmp_path):
    manifest = _good(tmp_path)
    os.remove(tmp_path / "group1-shard2of2.bin")
    with pytest.raises(ConversionError, match=r"group 1: shard file 'group1-shard2of2.bin' is missing"):
        read_weights(manifest, str(tmp_path))


def test_huge_declared_shape_fails_before_allocating(tmp_path):
    manifest = _good(tmp_path)
    manifest[0]["weights"][0]["shape"] = [2**40, 2**40]
    with pytest.raises(ConversionError, match="declares at least"):
        read_weights(manifest, str(tmp_path))
    manifest[0]["weights"][0].update(shape=[2**62], dtype="string")
    with pytest.raises(ConversionError, match="declares at least"):
        read_weights(manifest, str(tmp_path))


def test_legacy_manifest_without_original_dtype(tmp_path):
    # tfjs 0.x: quantization {min, scale, dtype}; int32 weights were quantized too.
    (tmp_path / "group1-shard1of1").write_bytes(bytes([0, 2, 255, 0, 1]))
    manifest = [
        {
            "paths": ["group1-shard1of1"],
            "weights": [
                {
                    "name": "f",
                    "shape": [3],
                    "dtype": "float32",
                    "quantization": {"min": -1.0, "scale": 0.5, "dtype": "uint8"},
                },
                {
                    "name": "i",
                    "shape": [2],
                    "dtype": "int32",
                    "quantization": {"min": -0.5, "scale": 1.0, "dtype": "uint8"},
                },
            ],
        }
    ]
    back = dict(read_weights(manifest, str(tmp_path)))
    assert back["f"].dtype == np.float32 and back["f"].tolist() == [-1.0, 0.0, 126.5]
    # Math.round(-0.5) == -0 and Math.round(0.5) == 1 in JS
    assert back["i"].dtype == np.int32 and back["i"].tolist() == [0, 1]


def test_dequantize_rounds_like_float32_array(tmp_path):
    # 1 * 0.1 + 0.2 in doubles is 0.30000000000000004, stored into a Float32Array.
    (tmp_path / "s.bin").write_bytes(bytes([1]))
    manifest = [
        {
            "paths": ["s.bin"],
            "weights": [
                {
                    "name": "f",
                    "shape": [],
                    "dtype": "float32",
                    "quantization": {"dtype": "uint8", "min": 0.2, "scale": 0.1, "original_dtype": "float32"},
                }
            ],
        }
    ]
    got = read_weights(manifest, str(tmp_path))[0][1]
    assert got.dtype == np.float32 and got == np.float32(0.1 * 1 + 0.2)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m: m[0]["weights"][0].update(dtype="float64"), "unsupported dtype 'float64'"),
        (lambda m: m[0]["weights"][0].update(shape=[-1]), "invalid shape"),
        (lambda m: m[0]["weights"][0].update(shape=None), "invalid shape"),
        (lambda m: m[0]["weights"][0].update(name=3), "no valid name"),
        (lambda m: m[0].update(paths="x"), "must be an object with 'paths' and 'weights' lists"),
        (
            lambda m: m[0]["weights"][0].update(quantization={"dtype": "uint8", "min": "0", "scale": 1}),
            "invalid quantization min",
        ),
        (lambda m: m[0]["weights"][0].update(quantization={"dtype": "int4"}), "invalid quantization entry"),
        (lambda m: m.append({"paths": [], "weights": [dict(m[0]["weights"][0])]}), "duplicate weight name a"),
    ],
)
def test_bad_manifest_entries(tmp_path, mutate, message):
    manifest = _good(tmp_path)
    mutate(manifest)
    with pytest.raises(ConversionError, match=message):
        read_weights(manifest, str(tmp_path))


def test_unwritable_output_is_a_conversion_error(tmp_path):
    with pytest.raises(ConversionError, match=r"cannot write weight shard group1-shard1of1\.bin"):
        write_weights([[("a", np.ones(2, np.float32))]], str(tmp_path / "missing-dir"))


def test_pattern_matching_only_int_weights_is_not_quantized(tmp_path):
    manifest = write_weights(
        [[("ids", np.arange(3, dtype=np.int32)), ("w", np.ones(2, np.float32))]],
        str(tmp_path),
        quantization={"uint8": ("ids",)},
    )
    assert [("quantization" in e) for e in manifest[0]["weights"]] == [False, False]


def test_auto_conversion_is_logged_not_printed(tmp_path, caplog, capsys):
    caplog.set_level("INFO", logger="tfjsconv.weight_writer")
    write_weights([[("i", np.arange(2, dtype=np.int64))]], str(tmp_path))
    assert "weight i with shape (2,) and dtype int64 was auto converted to the type int32" in caplog.text
    assert capsys.readouterr().out == ""


def test_same_input_same_bytes(tmp_path):
    rng = np.random.default_rng(5)
    groups = [[("w", rng.normal(size=(50, 20)).astype(np.float32)), ("s", np.array(["a", "bc"]))]]
    outs = []
    for run in ("one", "two"):
        (tmp_path / run).mkdir()
        manifest = write_weights(
            groups, str(tmp_path / run), shard_size_bytes=999, quantization={"uint16": ("w",)}
        )
        outs.append((manifest, {p: (tmp_path / run / p).read_bytes() for p in manifest[0]["paths"]}))
    assert outs[0] == outs[1]
