"""Asserts that Bazel 7.7.1 (bzlmod) and Bazel 4.2.3 (WORKSPACE) built the same bytes.

Run by `./dev test` after both builds:

    python3 tools/bazel7/compare_outputs.py BAZEL4_BIN BAZEL7_BIN CONSUMER_BIN

Every output directory of //examples/... must exist in both bin trees with identical
files (conversions and the tfjs_web_package npm packages, WEB_PACKAGES at least); the
consumer module's conversions (same attributes as two examples) must equal the
examples', and its summary must carry the TfjsModelInfo fields it read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# tfjs_web_package outputs in //examples: each must be built by both Bazels, and hold a
# package.json (what `npm pack` packs).
WEB_PACKAGES = ("mlp_web", "mlp_layers_uint8_web")


def tree(root: Path) -> dict[str, bytes]:
    """Relative path -> content of every file under root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def example_outputs(bin_dir: Path) -> list[str]:
    """Names of the conversion output directories under <bin>/examples."""
    return sorted(
        p.name for p in (bin_dir / "examples").iterdir() if p.is_dir() and not p.name.endswith(".runfiles")
    )


def compare(bazel4_bin: Path, bazel7_bin: Path, consumer_bin: Path) -> list[str]:
    """Differences found, as one-line messages (empty: identical)."""
    problems: list[str] = []
    names4, names7 = example_outputs(bazel4_bin), example_outputs(bazel7_bin)
    if names4 != names7 or not names4:
        problems.append(f"example outputs differ: Bazel 4 {names4}, Bazel 7 {names7}")
    for name in sorted(set(names4) & set(names7)):
        a, b = tree(bazel4_bin / "examples" / name), tree(bazel7_bin / "examples" / name)
        if not a:
            problems.append(f"examples/{name}: empty")
        if a != b:
            changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            problems.append(f"examples/{name}: Bazel 4 and 7 differ in {changed}")
    for name in WEB_PACKAGES:
        if name not in names4 or name not in names7:
            problems.append(f"examples/{name}: the web package was not built by both Bazels")
        elif not (bazel4_bin / "examples" / name / "package.json").is_file():
            problems.append(f"examples/{name}: no package.json")
    for name in ("mlp_graph", "mlp_layers_uint8"):
        if tree(consumer_bin / name) != tree(bazel4_bin / "examples" / name):
            problems.append(f"consumer {name} differs from examples/{name}")
    summary = json.loads((consumer_bin / "summary.json").read_text())
    expected = [
        {
            "label": "mlp_graph",
            "model_dir": "mlp_graph",
            "model_json": "mlp_graph/model.json",
            "format": "tfjs_graph_model",
            "input_format": "keras",
            "quantization": {},
            "weight_shard_size_bytes": 4194304,
        },
        {
            "label": "mlp_layers_uint8",
            "model_dir": "mlp_layers_uint8",
            "model_json": "mlp_layers_uint8/model.json",
            "format": "tfjs_layers_model",
            "input_format": "keras",
            "quantization": {"uint8": []},
            "weight_shard_size_bytes": 24,
        },
    ]
    if summary != expected:
        problems.append(f"consumer summary.json: {summary} != {expected}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: compare_outputs.py BAZEL4_BIN BAZEL7_BIN CONSUMER_BIN", file=sys.stderr)
        return 2
    bazel4_bin, bazel7_bin, consumer_bin = (Path(a) for a in argv)
    problems = compare(bazel4_bin, bazel7_bin, consumer_bin)
    for p in problems:
        print(f"compare_outputs: {p}", file=sys.stderr)
    if not problems:
        n = len(example_outputs(bazel4_bin))
        print(
            f"compare_outputs: {n} example outputs ({len(WEB_PACKAGES)} of them web packages) and "
            "the consumer's 2 byte-identical across Bazel 4.2.3 and 7.7.1",
            file=sys.stderr,
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
