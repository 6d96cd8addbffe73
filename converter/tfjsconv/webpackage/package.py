"""A converted model as an npm package a web app installs, bundles and serves.

    build_web_package("out/mlp_graph", "out/mlp_web", "mlp-web", "1.0.0")

writes one directory that ``npm pack`` accepts: the weight shards under content-hashed
names with ``model.json`` rewritten to point at them (plus a hashed copy of it), a
``.gz`` and a ``.br`` beside every file a browser fetches (only where smaller),
``integrity.json`` (SRI sha384 of every file), ``package.json``, the ES-module loader
``index.js``, its typings ``index.d.ts`` and a size report. No conversion happens
here: the model's bytes are only renamed, hashed and compressed. Every output is a pure
function of the model's files and the arguments (no times, no paths), written into a
staging directory and renamed into place.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Any

import tfjsconv
from tfjsconv import fsutil, model_json
from tfjsconv.errors import ConversionError
from tfjsconv.webpackage import compress, typings

# npm's rules for a package name (lower case, URL-safe, optional @scope/) and SemVer 2.
_NPM_NAME = re.compile(r"^(?:@[a-z0-9-~][a-z0-9-._~]*/)?[a-z0-9-~][a-z0-9-._~]*$")
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
# Hex digits of a file's sha256 in its content-addressed name (64 bits).
HASH_LENGTH = 16
# The @tensorflow/tfjs versions whose loader reads what tfjsconv writes.
TFJS_PEER_RANGE = f"^{tfjsconv.COMPATIBLE_TFJS_VERSION}"
MODEL_JSON = "model.json"
_BYTES_PER_DTYPE = {
    "float32": 4,
    "int32": 4,
    "bool": 1,
    "complex64": 8,
    "float16": 2,
    "uint8": 1,
    "uint16": 2,
}


@dataclass(frozen=True)
class WebPackage:
    """What was written: the directory, the report (report.json's data) and its summary."""

    path: str
    report: dict[str, Any]
    summary: str


def check_name_version(package_name: str, version: str) -> None:
    """npm's package-name rules and SemVer: a one-line ConversionError otherwise."""
    if len(package_name) > 214 or not _NPM_NAME.match(package_name):
        raise ConversionError(
            f"package name {package_name!r} is not a valid npm name (lower case letters, digits, "
            "'-', '.', '_', '~', an optional @scope/; at most 214 characters)"
        )
    if not _SEMVER.match(version):
        raise ConversionError(f"version {version!r} is not a SemVer version such as 1.0.0")


def sri(data: bytes) -> str:
    """The Subresource-Integrity value of ``data`` (sha384, base64)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def hashed_name(name: str, data: bytes) -> str:
    """``group1-shard1of2.bin`` -> ``group1-shard1of2.<sha256 prefix>.bin``."""
    stem, dot, ext = os.path.basename(name).rpartition(".")
    if not dot:
        stem, ext = ext, "bin"
    return f"{stem}.{hashlib.sha256(data).hexdigest()[:HASH_LENGTH]}.{ext}"


def _weight_bytes(spec: tuple[str, tuple[int, ...], str, dict[str, Any] | None]) -> tuple[str, int]:
    """(stored dtype, bytes) of one manifest weight; string weights count as 0 here."""
    _, shape, dtype, quant = spec
    stored = quant["dtype"] if quant else dtype
    count = 1
    for d in shape:
        count *= d
    return stored, count * _BYTES_PER_DTYPE.get(stored, 0)


def _read_model(
    model_dir: str, follow_symlinks: bool
) -> tuple[dict[str, Any], dict[str, bytes], list[dict[str, Any]]]:
    """(model.json with hashed shard paths, {hashed name: bytes}, per-group report rows)."""
    from tfjsconv.weight_reader import checked_groups

    model = model_json.load_model_json(model_dir, require_weights_manifest=True)
    if not isinstance(model.get("modelTopology"), dict):
        raise ConversionError(f"{model_dir}: model.json has no modelTopology (not a tfjs model)")
    files: dict[str, bytes] = {}
    groups: list[dict[str, Any]] = []
    for g, group, specs, paths in checked_groups(model["weightsManifest"], model_dir, follow_symlinks):
        names = []
        for rel, path in zip(group["paths"], paths, strict=False):
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as exc:
                raise ConversionError(f"cannot read weight shard {rel}: {exc.strerror or exc}") from None
            name = hashed_name(rel, data)
            files[name] = data
            names.append(name)
        group["paths"] = names
        dtypes: dict[str, int] = {}
        for spec in specs:
            stored, size = _weight_bytes(spec)
            dtypes[stored] = dtypes.get(stored, 0) + size
        groups.append(
            {
                "group": g,
                "shards": names,
                "bytes": sum(len(files[n]) for n in names),
                "dtypes": dict(sorted(dtypes.items())),
            }
        )
    return model, files, groups


def _js(value: Any) -> str:
    return json.dumps(value, sort_keys=False, separators=(", ", ": "))


def loader_js(
    package_name: str, model_file: str, desc: Mapping[str, Any], integrity: Mapping[str, str]
) -> str:
    """index.js: the loader template with this package's constants filled in."""
    text = resources.files("tfjsconv.webpackage").joinpath("loader.template.js").read_text(encoding="utf-8")
    values = {
        "package": package_name,
        "model_json": model_file,
        "kind": desc["kind"],
        "inputs": desc["inputs"],
        "outputs": desc["outputs"],
        "integrity": dict(sorted(integrity.items())),
    }
    for key, value in values.items():
        literal = _js(value) + ";"
        # subn calls the replacement now, in this iteration.
        text, n = re.subn(r"/\*@" + key + r"@\*/ [^;]*;", lambda _m: literal, text, count=1)  # noqa: B023
        assert n == 1, f"loader.template.js has no /*@{key}@*/ slot"
    return text.replace("loader.template.js", "tfjsconv's loader template", 1)


def _encode(task: tuple[str, str, bytes]) -> bytes:
    """One (name, codec, bytes) task: shards are brotli'd as binary, the rest as text."""
    name, codec, data = task
    if codec == "gz":
        return compress.gzip_bytes(data)
    return compress.brotli_bytes(data, binary=not name.endswith((".json", ".js")))


def _task_order(task: tuple[str, str, bytes]) -> tuple[int, str, str]:
    return -len(task[2]), task[0], task[1]


def _human(size: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _report_md(report: Mapping[str, Any]) -> str:
    lines = [
        f"# {report['package']}@{report['version']}",
        "",
        report["summary"],
        "",
        "| file | raw | gzip | brotli |",
        "|---|---:|---:|---:|",
    ]
    for row in report["files"]:
        gz = f"{row['gzip']}" + ("" if row["gzip_written"] else " (not written)")
        br = f"{row['brotli']}" + ("" if row["brotli_written"] else " (not written)")
        lines.append(f"| {row['path']} | {row['raw']} | {gz} | {br} |")
    lines += ["", "| weight group | shards | bytes | by dtype |", "|---:|---:|---:|---|"]
    for group in report["weight_groups"]:
        dtypes = ", ".join(f"{k}: {v}" for k, v in group["dtypes"].items())
        lines.append(f"| {group['group']} | {len(group['shards'])} | {group['bytes']} | {dtypes} |")
    lines += ["", "Sizes in bytes. A `.gz`/`.br` is written only where it is smaller than the file.", ""]
    return "\n".join(lines)


def package_files(
    model_dir: str, package_name: str, version: str, follow_symlinks: bool = False
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Every file of the package (relative name -> bytes) and the report, in memory."""
    check_name_version(package_name, version)
    model, files, groups = _read_model(model_dir, follow_symlinks)
    stable = model_json.dumps(model)
    hashed = hashed_name(MODEL_JSON, stable)
    files[MODEL_JSON] = stable
    files[hashed] = stable
    desc = typings.describe(model)
    fetched = {n: sri(files[n]) for n in [hashed] + [s for g in groups for s in g["shards"]]}
    files["index.js"] = loader_js(package_name, hashed, desc, fetched).encode("utf-8")
    files["index.d.ts"] = typings.typescript(desc, package_name).encode("utf-8")

    served = sorted(files.keys() - {"index.d.ts"})
    # zlib and brotli release the GIL: each (content, codec) pair on its own thread,
    # largest first; model.json and its hashed copy are compressed once.
    unique = {files[n]: n for n in reversed(served)}
    tasks = sorted(
        ((n, codec, data) for data, n in unique.items() for codec in ("gz", "br")), key=_task_order
    )
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        done = dict(zip(((n, codec) for n, codec, _ in tasks), pool.map(_encode, tasks), strict=False))
    rows: list[dict[str, Any]] = []
    for name in served:
        first = unique[files[name]]
        gz, br = done[(first, "gz")], done[(first, "br")]
        raw = len(files[name])
        rows.append(
            {
                "path": name,
                "raw": raw,
                "gzip": len(gz),
                "brotli": len(br),
                "gzip_written": len(gz) < raw,
                "brotli_written": len(br) < raw,
            }
        )
        if len(gz) < raw:
            files[name + ".gz"] = gz
        if len(br) < raw:
            files[name + ".br"] = br
    model_rows = [r for r in rows if r["path"] in fetched]  # what load() fetches
    totals = {
        "raw": sum(r["raw"] for r in model_rows),
        "gzip": sum(min(r["raw"], r["gzip"]) for r in model_rows),
        "brotli": sum(min(r["raw"], r["brotli"]) for r in model_rows),
        "shards": len(fetched) - 1,
    }
    dtypes: dict[str, int] = {}
    for group in groups:
        for k, v in group["dtypes"].items():
            dtypes[k] = dtypes.get(k, 0) + v
    summary = (
        f"{package_name}: {_human(totals['raw'])} raw -> {_human(totals['gzip'])} gzip, "
        f"{_human(totals['brotli'])} br, {totals['shards']} shard{'s' if totals['shards'] != 1 else ''}"
    )
    report = {
        "package": package_name,
        "version": version,
        "kind": desc["kind"],
        "summary": summary,
        "model": totals,
        "files": rows,
        "weight_groups": groups,
        "dtypes": dict(sorted(dtypes.items())),
        "compression": {
            "gzip_level": compress.GZIP_LEVEL,
            "brotli_quality_text": compress.BROTLI_TEXT_QUALITY,
            "brotli_quality_binary": compress.BROTLI_BINARY_QUALITY,
            "brotli_window": compress.BROTLI_WINDOW,
        },
    }
    files["report.json"] = (json.dumps(report, indent=2) + "\n").encode("utf-8")
    files["REPORT.md"] = _report_md(report).encode("utf-8")
    names = sorted(files.keys() | {"package.json", "integrity.json"})
    package = {
        "name": package_name,
        "version": version,
        "description": f"TensorFlow.js model packaged by tfjsconv {tfjsconv.__version__}",
        "type": "module",
        "main": "./index.js",
        "types": "./index.d.ts",
        "exports": {
            ".": {"types": "./index.d.ts", "default": "./index.js"},
            "./integrity.json": "./integrity.json",
            "./model.json": "./model.json",
            "./package.json": "./package.json",
            "./report.json": "./report.json",
        },
        "files": names,
        "sideEffects": False,
        "peerDependencies": {"@tensorflow/tfjs": TFJS_PEER_RANGE},
    }
    files["package.json"] = (json.dumps(package, indent=2) + "\n").encode("utf-8")
    integrity = {n: sri(files[n]) for n in sorted(files)}
    files["integrity.json"] = (json.dumps(integrity, indent=2) + "\n").encode("utf-8")
    return files, report


def build_web_package(
    model_dir: str,
    output_dir: str,
    package_name: str,
    version: str,
    *,
    overwrite: bool = False,
    follow_symlinks: bool = False,
) -> WebPackage:
    """Write the web package of the tfjs model in ``model_dir`` to ``output_dir``."""
    if not os.path.isdir(model_dir):
        raise ConversionError(f"model directory not found: {model_dir}")
    fsutil.check_not_overlapping(model_dir, output_dir)
    files, report = package_files(model_dir, package_name, version, follow_symlinks)
    with fsutil.staged_output(output_dir, kind="dir", overwrite=overwrite) as staging:
        for name in sorted(files):
            with open(os.path.join(staging, name), "wb") as f:
                f.write(files[name])
            os.chmod(os.path.join(staging, name), 0o644)
    return WebPackage(path=output_dir, report=report, summary=report["summary"])
