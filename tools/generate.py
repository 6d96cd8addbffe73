"""Writes the files generated from the project's single sources of truth.

    python3 tools/generate.py           # rewrite every generated file
    python3 tools/generate.py --check   # exit 1 and name the stale ones (tests do this)

* ``rules/private/formats.bzl`` and ``tools/pants_tfjs/pants_tfjs/formats.py`` from
  ``converter/tfjsconv/formats.py`` (formats, pairs, defaults, option rules, env);
* the attribute and provider tables of ``rules/README.md`` (their one place) from the
  ``doc=`` strings of ``rules/private/tfjs_model.bzl``, ``tfjs_web_package.bzl`` and
  ``providers.bzl`` (a small extractor: Debian has no stardoc);
* ``docs/reach.md`` and the reach line of ``README.md`` from ``docs/reach.json``
  (``tools/reach_table.py``).

Standard library only; Starlark is read with Python's ``ast`` (the subset used in the
attribute dictionaries is valid Python).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORMATS_PY = "converter/tfjsconv/formats.py"
FORMATS_BZL = "rules/private/formats.bzl"
PANTS_FORMATS = "tools/pants_tfjs/pants_tfjs/formats.py"
RULE_BZL = "rules/private/tfjs_model.bzl"
WEB_PACKAGE_BZL = "rules/private/tfjs_web_package.bzl"
PROVIDERS_BZL = "rules/private/providers.bzl"
READMES = ("rules/README.md",)
GENERATED = f"Generated from {FORMATS_PY} by tools/generate.py; do not edit."


def _read(rel: str) -> str:
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def load_formats() -> ModuleType:
    """``tfjsconv.formats`` loaded from its file (no package import, no numpy needed)."""
    spec = importlib.util.spec_from_file_location("_tfjsconv_formats", os.path.join(ROOT, FORMATS_PY))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- Starlark from Python data -------------------------------------------------------


def starlark(value: Any, indent: int = 0, inline: bool = False) -> str:
    """A Starlark literal in the layout buildifier keeps (one element per line)."""
    pad = "    " * indent
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        items = [starlark(v, inline=True) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, list):
        if inline or not value:
            return "[" + ", ".join(starlark(v, inline=True) for v in value) + "]"
        lines = [f"{pad}    {starlark(v, indent + 1)}," for v in value]
        return "[\n" + "\n".join(lines) + f"\n{pad}]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = [f"{pad}    {starlark(k)}: {starlark(v, indent + 1)}," for k, v in value.items()]
        return "{\n" + "\n".join(lines) + f"\n{pad}}}"
    raise TypeError(f"no Starlark form for {value!r}")


def formats_bzl(fmt: ModuleType) -> str:
    tables: list[tuple[str, str, Any]] = [
        ("INPUT_FORMATS", "Every --input_format.", list(fmt.INPUT_FORMATS)),
        ("OUTPUT_FORMATS", "Every --output_format.", list(fmt.OUTPUT_FORMATS)),
        ("TFJS_OUTPUTS", "Outputs made of model.json + weight shards.", list(fmt.TFJS_OUTPUTS)),
        ("SAVED_MODEL_INPUTS", "Inputs that take saved_model_tags.", list(fmt.SAVED_MODEL_INPUTS)),
        (
            "DEFAULT_OUTPUT_FORMAT",
            "The converter's output format when none is given.",
            dict(fmt.DEFAULT_OUTPUT_FORMAT),
        ),
        (
            "SUPPORTED_PAIRS",
            "Every (input_format, output_format) pair that converts.",
            list(fmt.SUPPORTED_PAIRS),
        ),
        ("MAIN_OUTPUT", "Name of the main output inside the target's directory.", dict(fmt.MAIN_OUTPUT)),
        ("MODEL_JSON", "The file name of a tfjs model's topology + weights manifest.", fmt.MODEL_JSON),
        ("QUANTIZATION_DTYPES", "quantize_<dtype> options.", list(fmt.QUANTIZATION_DTYPES)),
        ("ERROR_METRICS", "error_metric values of quantize_budget.", list(fmt.ERROR_METRICS)),
        ("DEFAULT_SHARD_SIZE_BYTES", "weight_shard_size_bytes' default.", fmt.DEFAULT_SHARD_SIZE_BYTES),
        (
            "OPTION_DEFAULTS",
            'Option -> default (None, "" and [] mean unset).',
            {name: default for name, (_, default) in fmt.OPTIONS.items()},
        ),
        (
            "CHECKS",
            "(option, kind, formats), checked in order by validate.bzl.",
            [(name, kind, list(formats)) for name, kind, formats in fmt.CHECKS],
        ),
        ("ACTION_ENV", "The pinned environment of every conversion action.", dict(fmt.ACTION_ENV)),
    ]
    parts = [
        f'"""{GENERATED}\n\nThe converter\'s formats, defaults and option rules (tfjsconv.formats)."""\n'
    ]
    for name, comment, value in tables:
        parts.append(f"# {comment}\n{name} = {starlark(value)}\n")
    return "\n".join(parts)


def pants_formats_py() -> str:
    return (
        f"# {GENERATED}\n# Pants runs plugins on its own interpreter, where tfjsconv is not installed.\n"
        + _read(FORMATS_PY)
    )


# --- Attribute docs from Starlark ----------------------------------------------------


def _eval(node: ast.AST, names: Mapping[str, Any]) -> Any:
    """Evaluate the expressions doc strings and defaults use: literals, +, names,
    ``", ".join(NAME)``, ``str(x)`` and ``Label("...")``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _eval(node.left, names) + _eval(node.right, names)
    if isinstance(node, ast.List):
        return [_eval(e, names) for e in node.elts]
    if isinstance(node, ast.Name):
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        return names[node.id]
    if isinstance(node, ast.Call):
        func = node.func
        args = [_eval(a, names) for a in node.args]
        if isinstance(func, ast.Attribute) and func.attr == "join":
            return _eval(func.value, names).join(args[0])
        if isinstance(func, ast.Name) and func.id in ("str", "Label"):
            return str(args[0])
    return ast.literal_eval(node)


def _attr_dicts(rel: str, names: Mapping[str, Any]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """``{dict name: [(attr name, attr kind, {kwarg: value})]}`` for the attribute
    dictionaries of a .bzl file (``X = {...}`` and ``X.update({...})``)."""
    found: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}

    def entries(d: ast.Dict) -> list[tuple[str, str, dict[str, Any]]]:
        rows = []
        for key, value in zip(d.keys, d.values, strict=False):
            if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)):
                continue
            if not (isinstance(value.func.value, ast.Name) and value.func.value.id == "attr"):
                continue
            assert key is not None
            kwargs = {kw.arg: _eval(kw.value, names) for kw in value.keywords if kw.arg}
            rows.append((ast.literal_eval(key), value.func.attr, kwargs))
        return rows

    for node in ast.parse(_read(rel)).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            target = node.targets[0]
            if isinstance(target, ast.Name):
                found[target.id] = entries(node.value)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value
            if isinstance(call.func, ast.Attribute) and call.func.attr == "update" and call.args:
                owner = call.func.value
                if isinstance(owner, ast.Name) and isinstance(call.args[0], ast.Dict):
                    found.setdefault(owner.id, []).extend(entries(call.args[0]))
    return found


_TYPES = {
    "label": "label",
    "string": "string",
    "int": "int",
    "bool": "bool",
    "string_list": "string list",
    "label_keyed_string_dict": "dict name → JSON label",
}
_EMPTY = {"string": "", "string_list": [], "label_keyed_string_dict": {}, "bool": False, "int": 0}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def attribute_table() -> str:
    """The Markdown table of the rules' public attributes, from their ``doc=`` strings."""
    fmt = load_formats()
    names = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(fmt).items() if k.isupper()}
    dicts = _attr_dicts(RULE_BZL, names)
    common = [row for row in dicts["_COMMON_ATTRS"] if not row[0].startswith("_")]
    quant_only = [row for row in dicts["_QUANT_ATTRS"] if not row[0].startswith("_")]
    lines = ["| Attribute | Type | Default | Meaning |", "|---|---|---|---|"]
    for rows, only in ((common, ""), (quant_only, " (`tfjs_quantized_model` only)")):
        for name, kind, kw in rows:
            typ = _TYPES.get(kind, kind)
            if kw.get("mandatory"):
                typ += " (mandatory)"
                default = ""
            else:
                value = kw.get("default", _EMPTY.get(kind))
                default = "`" + starlark(value, inline=True) + "`"
            lines.append(f"| `{name}`{only} | {typ} | {default} | {_cell(kw.get('doc', ''))} |")
    return "\n".join(lines) + "\n"


def web_package_attribute_table() -> str:
    """The Markdown table of ``tfjs_web_package``'s public attributes."""
    lines = ["| Attribute | Type | Default | Meaning |", "|---|---|---|---|"]
    for name, kind, kw in _attr_dicts(WEB_PACKAGE_BZL, {"TfjsModelInfo": "TfjsModelInfo"})[
        "WEB_PACKAGE_ATTRS"
    ]:
        typ = _TYPES.get(kind, kind) + (" (mandatory)" if kw.get("mandatory") else "")
        default = (
            ""
            if kw.get("mandatory")
            else "`" + starlark(kw.get("default", _EMPTY.get(kind)), inline=True) + "`"
        )
        lines.append(f"| `{name}` | {typ} | {default} | {_cell(kw.get('doc', ''))} |")
    return "\n".join(lines) + "\n"


def provider_table() -> str:
    """The Markdown table of ``TfjsModelInfo``'s fields, from ``providers.bzl``."""
    for node in ast.parse(_read(PROVIDERS_BZL)).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            fields = next(kw.value for kw in node.value.keywords if kw.arg == "fields")
            assert isinstance(fields, ast.Dict)
            lines = ["| Field | Meaning |", "|---|---|"]
            for key, value in zip(fields.keys, fields.values, strict=False):
                assert key is not None
                lines.append(f"| `{ast.literal_eval(key)}` | {_cell(_eval(value, {}))} |")
            return "\n".join(lines) + "\n"
    raise AssertionError(f"no provider in {PROVIDERS_BZL}")


def replace_block(text: str, name: str, body: str, where: str) -> str:
    """Replace what lies between ``<!-- BEGIN name -->`` and ``<!-- END name -->``."""
    begin = f"<!-- BEGIN {name} (generated by tools/generate.py from the doc= strings; do not edit) -->\n"
    end = f"<!-- END {name} -->"
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise SystemExit(f"{where}: markers for {name!r} not found")
    return text[: i + len(begin)] + body + text[j:]


# --- driver --------------------------------------------------------------------------


def outputs() -> dict[str, str]:
    """Every generated file: repository-relative path -> the content it should have."""
    fmt = load_formats()
    result = {FORMATS_BZL: formats_bzl(fmt), PANTS_FORMATS: pants_formats_py()}
    blocks: list[tuple[str, Callable[[], str]]] = [
        ("attributes", attribute_table),
        ("provider", provider_table),
        ("web_package_attributes", web_package_attribute_table),
    ]
    for readme in READMES:
        text = _read(readme)
        for name, make in blocks:
            text = replace_block(text, name, make(), readme)
        result[readme] = text
    result.update(_tool("reach_table").outputs())  # docs/reach.md + the README line
    return result


def _tool(name: str) -> ModuleType:
    """A module of tools/ loaded from its file (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stale(expected: dict[str, str] | None = None) -> list[str]:
    """The generated files whose content differs from what this script writes."""
    expected = outputs() if expected is None else expected
    return sorted(rel for rel, content in expected.items() if _read(rel) != content)


def main(argv: list[str]) -> int:
    expected = outputs()
    if argv == ["--check"]:
        bad = stale(expected)
        for rel in bad:
            print(f"{rel} is stale: run python3 tools/generate.py", file=sys.stderr)
        return 1 if bad else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for rel, content in expected.items():
        path = os.path.join(ROOT, rel)
        if not os.path.exists(path) or _read(rel) != content:
            with open(path, "w", encoding="utf-8") as f:
                f.write(content)
            print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
