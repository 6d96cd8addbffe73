"""The import graph of converter/, rules/ and tools/: no cycles, no borrowed private names.

Edges are read from the AST, not from ``sys.modules`` after an import, so every import
statement counts wherever it stands: module level, inside a function (lazy imports),
and under ``if TYPE_CHECKING:``. A cycle that only closes through a lazy or a
type-only import is still two modules that each need the other to be understood,
which is what this test exists to prevent. Importing ``pkg.mod`` does not add an edge
to ``pkg/__init__.py`` (Python runs it, but a package's ``__init__`` re-exporting its
children is not a dependency between concerns).

A private name is one starting with ``_``. A module may import private names of its
own package (its directory) -- that is how a package shares helpers -- but not of
another package's modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Directories whose children are importable top-level names (sys.path entries at run
# time: the converter package, the tool packages, the scripts beside the rules).
ROOTS = [
    "converter",
    "tools",
    "tools/pb2json",
    "tools/pants_tfjs",
    "tools/setuptools_tfjs",
    "tools/remote_worker",
    "tools/bazel7",
    "rules/private",
]
SCANNED = ("converter", "rules", "tools")
SKIP_PARTS = {"node_modules", "__pycache__"}


def _files() -> list[Path]:
    out = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            if not SKIP_PARTS & set(path.relative_to(REPO).parts):
                out.append(path)
    return out


def _module_name(path: Path) -> str:
    """The dotted name under the deepest root that holds ``path``."""
    rel = path.relative_to(REPO)
    best: tuple[str, ...] | None = None
    for root in ROOTS:
        parts = Path(root).parts
        if rel.parts[: len(parts)] == parts and (best is None or len(parts) > len(best)):
            best = parts
    assert best is not None, path
    mod = list(rel.parts[len(best) :])
    mod[-1] = mod[-1][: -len(".py")]
    if mod[-1] == "__init__":
        mod.pop()
    return ".".join(mod)


def _imports(path: Path, name: str) -> Iterator[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import statement."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield mod, [a.name for a in node.names], node.lineno


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    """Module -> modules it imports (project modules only), and the private-name findings."""
    modules = {_module_name(p): p for p in _files()}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    private: list[str] = []
    for name, path in modules.items():
        own_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for mod, names, line in _imports(path, name):
            targets = []
            for n in names:
                sub = f"{mod}.{n}"
                if sub in modules:
                    targets.append(sub)
                elif mod in modules:
                    targets.append(mod)
                    target_pkg = mod if modules[mod].name == "__init__.py" else mod.rpartition(".")[0]
                    if n.startswith("_") and not n.startswith("__") and target_pkg != own_package:
                        private.append(f"{path.relative_to(REPO)}:{line} imports {mod}.{n}")
            if not names and mod in modules:
                targets.append(mod)
            edges[name].update(t for t in targets if t != name)
    return edges, private


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_scan_sees_the_packages() -> None:
    """Guards the test itself: the known edges are found, lazy and TYPE_CHECKING ones too."""
    edges, _ = _graph()
    assert "tfjsconv.cli" in edges and "tfjsconv.api" in edges["tfjsconv.cli"]
    assert len(edges) > 80


def test_a_cycle_is_detected() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    edges, _ = _graph()
    cycles = _cycles(edges)
    assert not cycles, f"{len(cycles)} import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_private_names_from_other_packages() -> None:
    _, private = _graph()
    assert not private, "private names imported across packages:\n" + "\n".join(private)
