"""Read and validate a legacy (0.x) model directory without changing it.

Everything the migration needs is checked here, before anything is written: the
GraphDef parses, the manifest is well formed, shard paths stay inside the model
directory, every shard exists and the shards hold exactly the bytes the manifest's
weights need. A model that passes can be migrated without surprises.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass

from tfjsconv.errors import ConversionError
from tfjsconv_pb2json import topology

PB_NAME = "tensorflowjs_model.pb"
MANIFEST_NAME = "weights_manifest.json"

# Bytes per element of the dtypes a manifest may name (strings are variable).
_DTYPE_BYTES: dict[str, int] = {"float32": 4, "int32": 4, "bool": 1, "complex64": 8}
_QUANT_BYTES: dict[str, int] = {"uint8": 1, "uint16": 2, "float16": 2}


@dataclass(frozen=True)
class LegacyModel:
    """A validated legacy model directory."""

    src: str
    graph_def: object
    manifest: list[dict]
    # Shard paths as written in the manifest (relative, '/'-separated), group order.
    shard_paths: tuple[str, ...]
    # Regular files in ``src`` that are neither the .pb, the manifest nor a shard.
    extra_files: tuple[str, ...]


def is_legacy_dir(path: str) -> bool:
    """True if ``path`` looks like a 0.x model directory (has either legacy file)."""
    return os.path.isfile(os.path.join(path, PB_NAME)) or os.path.isfile(os.path.join(path, MANIFEST_NAME))


def _read_bytes(path: str, what: str) -> bytes:
    if not os.path.isfile(path):
        raise ConversionError(f"missing {what}: {path}")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConversionError(f"cannot read {what} {path}: {exc.strerror}") from None


def _check_shard_path(path: object, manifest_path: str) -> str:
    """Return ``path`` if it is a plain relative path inside the model directory."""
    if not isinstance(path, str) or not path:
        raise ConversionError(f"{manifest_path}: shard path {path!r} is not a file name")
    parts = path.split("/")
    if (
        "\\" in path
        or path.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or (len(path) > 1 and path[1] == ":")
    ):
        raise ConversionError(f"{manifest_path}: shard path {path!r} escapes the model directory")
    return path


def _weight_nbytes(weight: dict, where: str) -> int | None:
    """Bytes ``weight`` occupies in its group, or None for variable-size strings."""
    shape = weight.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ConversionError(f"{where}: shape must be a list of non-negative ints, got {shape!r}")
    count = math.prod(shape)
    dtype = weight.get("dtype")
    quant = weight.get("quantization")
    if quant is not None:
        if not isinstance(quant, dict) or quant.get("dtype") not in _QUANT_BYTES:
            raise ConversionError(
                f"{where}: quantization dtype must be one of uint8, uint16, float16, got {quant!r}"
            )
        if quant["dtype"] != "float16":
            for key in ("min", "scale"):
                if not isinstance(quant.get(key), (int, float)) or isinstance(quant.get(key), bool):
                    raise ConversionError(f"{where}: quantization {key!r} must be a number")
        if dtype not in ("float32", "int32"):
            raise ConversionError(f"{where}: a quantized weight must be float32 or int32, not {dtype!r}")
        return count * _QUANT_BYTES[quant["dtype"]]
    if dtype == "string":
        return None
    if dtype not in _DTYPE_BYTES:
        raise ConversionError(
            f"{where}: unsupported dtype {dtype!r} (expected float32, int32, bool, complex64 or string)"
        )
    return count * _DTYPE_BYTES[dtype]


def _string_weight_nbytes(data: bytes, offset: int, count: int, where: str) -> int:
    """Length of ``count`` length-prefixed strings starting at ``offset``."""
    pos = offset
    for _ in range(count):
        if pos + 4 > len(data):
            raise ConversionError(f"{where}: the shards end inside a string weight")
        (length,) = struct.unpack_from("<I", data, pos)
        pos += 4 + length
    if pos > len(data):
        raise ConversionError(f"{where}: the shards end inside a string weight")
    return pos - offset


def _validate_manifest(manifest: object, src: str, manifest_path: str) -> tuple[str, ...]:
    """Check structure, paths, shard existence and sizes; return all shard paths."""
    if not isinstance(manifest, list) or not manifest:
        raise ConversionError(f"{manifest_path}: expected a non-empty JSON list of weight groups")
    seen_paths: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    all_paths: list[str] = []
    for g, group in enumerate(manifest, start=1):
        where = f"{manifest_path}: group {g}"
        if (
            not isinstance(group, dict)
            or not isinstance(group.get("paths"), list)
            or not isinstance(group.get("weights"), list)
        ):
            raise ConversionError(f"{where} must be an object with 'paths' and 'weights' lists")
        sizes = []
        for path in group["paths"]:
            path = _check_shard_path(path, manifest_path)
            if path in seen_paths:
                raise ConversionError(f"{manifest_path}: shard {path!r} is listed twice")
            seen_paths[path] = g
            full = os.path.join(src, *path.split("/"))
            if not os.path.isfile(full):
                raise ConversionError(f"missing shard {path!r} listed in {manifest_path}")
            sizes.append(os.path.getsize(full))
            all_paths.append(path)
        expected = 0
        data: bytes | None = None
        for w, weight in enumerate(group["weights"]):
            if not isinstance(weight, dict) or not isinstance(weight.get("name"), str):
                raise ConversionError(f"{where}: weight #{w + 1} must be an object with a 'name'")
            wwhere = f"{where}: weight {weight['name']!r}"
            if weight["name"] in seen_names:
                raise ConversionError(f"{manifest_path}: duplicate weight name {weight['name']!r}")
            seen_names[weight["name"]] = g
            nbytes = _weight_nbytes(weight, wwhere)
            if nbytes is None:
                if data is None:
                    data = b"".join(
                        _read_bytes(os.path.join(src, *p.split("/")), "shard") for p in group["paths"]
                    )
                nbytes = _string_weight_nbytes(data, expected, math.prod(weight["shape"]), wwhere)
            expected += nbytes
        if sum(sizes) != expected:
            raise ConversionError(
                f"shard size mismatch in group {g} of {manifest_path}: the shards hold "
                f"{sum(sizes)} bytes but the weights need {expected}"
            )
    return tuple(all_paths)


def read_legacy_model(src: str) -> LegacyModel:
    """Read and fully validate the legacy model directory ``src``."""
    if not os.path.isdir(src):
        raise ConversionError(f"legacy model directory does not exist: {src}")
    pb_path = os.path.join(src, PB_NAME)
    manifest_path = os.path.join(src, MANIFEST_NAME)
    graph_def = topology.parse_graph_def(_read_bytes(pb_path, "GraphDef"), pb_path)
    raw = _read_bytes(manifest_path, "weights manifest")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConversionError(f"{manifest_path} is not valid JSON: {exc}") from None
    shard_paths = _validate_manifest(manifest, src, manifest_path)
    names = {w["name"] for group in manifest for w in group["weights"]}
    missing = [n for n in topology.const_nodes(graph_def) if n not in names]
    if missing:
        raise ConversionError(
            f"{manifest_path} has no weight for Const node(s) of {pb_path}: {', '.join(missing)}"
        )
    known = {PB_NAME, MANIFEST_NAME} | set(shard_paths)
    extras = tuple(
        sorted(
            name
            for name in os.listdir(src)
            if name not in known
            and os.path.isfile(os.path.join(src, name))
            and not os.path.islink(os.path.join(src, name))
        )
    )
    return LegacyModel(src, graph_def, manifest, shard_paths, extras)


def find_legacy_dirs(root: str) -> list[str]:
    """Relative paths ('.' for ``root`` itself) of legacy model dirs under ``root``, sorted."""
    found: list[str] = []
    for dirpath, dirnames, _files in os.walk(root):
        dirnames.sort()
        if is_legacy_dir(dirpath):
            found.append(os.path.relpath(dirpath, root))
    return found


def new_shard_name(path: str) -> str:
    """The current-format name of a legacy shard: the same path with ``.bin``."""
    return path if path.endswith(".bin") else path + ".bin"
