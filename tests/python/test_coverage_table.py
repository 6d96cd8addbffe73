"""The coverage table in docs/testing.md and docs/coverage.md is generated, never hand-edited.

``tools/coverage_table.py`` renders both from ``docs/coverage.json`` (the corpus run's
results, see test_coverage_corpus.py); these checks need no TensorFlow or Node.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from checkout import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOL = REPO_ROOT / "tools" / "coverage_table.py"


@pytest.fixture(scope="module")
def table() -> Any:
    return load_script("tools/coverage_table.py")


def test_readme_and_docs_are_generated_from_the_committed_results() -> None:
    proc = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_hand_edit_is_detected(table: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme, doc = tmp_path / "docs" / "testing.md", tmp_path / "docs" / "coverage.md"
    doc.parent.mkdir()
    readme.write_text((REPO_ROOT / "docs" / "testing.md").read_text(encoding="utf-8"), encoding="utf-8")
    doc.write_text((REPO_ROOT / "docs" / "coverage.md").read_text(encoding="utf-8"), encoding="utf-8")
    for name, value in (("ROOT", tmp_path), ("SUMMARY", readme), ("DOC", doc)):
        monkeypatch.setattr(table, name, value)
    assert table.check() == []
    readme.write_text(
        readme.read_text(encoding="utf-8").replace("| **all** |", "| **all, edited** |"), encoding="utf-8"
    )
    doc.write_text(doc.read_text(encoding="utf-8").replace("✓", "ok", 1), encoding="utf-8")
    assert table.check() == ["docs/coverage.md", "docs/testing.md"]


def test_cells_and_counts(table: Any) -> None:
    doc = {
        "cases": {
            "a": {
                "paths": {
                    "k2:layers": {"outcome": "ok", "max_diff": 1.2e-7},
                    "k2:graph": {"outcome": "refused", "message": "Unsupported Ops: Erfc"},
                    "k3:layers": {"outcome": "fail", "message": "tfjs failed", "known": "fixed elsewhere"},
                    "k3:graph": {"outcome": "warned", "max_diff": 0.0, "warning": "class X"},
                }
            },
            "b": {"paths": {"sm:graph": {"outcome": "n/a", "message": "cannot build"}}},
        }
    }
    notes = table.Notes()
    paths = doc["cases"]["a"]["paths"]
    assert table.cell(paths["k2:layers"], notes) == "✓ 1e-7"
    assert table.cell(paths["k2:graph"], notes) == "refused [1]"
    assert table.cell(paths["k3:layers"], notes) == "✗ known [2]"
    assert table.cell(paths["k3:graph"], notes) == "⚠ 0 [3]"
    assert notes.items == ["Unsupported Ops: Erfc", "fixed elsewhere — tfjs failed", "class X"]
    counts = table.counts(doc)
    assert counts["k2:layers"]["ok"] == 1 and counts["k3:layers"]["known"] == 1
    assert counts["sm:graph"]["n/a"] == 1 and sum(counts["k2:graph"].values()) == 1


def test_a_wasm_backend_bug_counts_as_matched_with_a_note(table: Any) -> None:
    res = {
        "outcome": "wasm-bug",
        "max_diff": 2e-7,
        "wasm_bug": "tfjs-backend-wasm bug",
        "message": "tfjs wasm differs from TF by 1.9 > tol 3e-06",
    }
    notes = table.Notes()
    assert table.cell(res, notes) == "✓ 2e-7 cpu; wasm ✗ [1]"
    assert notes.items == ["tfjs-backend-wasm bug — tfjs wasm differs from TF by 1.9 > tol 3e-06"]
    counts = table.counts({"cases": {"a": {"paths": {"k2:layers": res}}}})
    assert counts["k2:layers"]["ok"] == 1 and counts["k2:layers"]["fail"] == 0
    assert (
        table.normalize({"cases": {"a": {"paths": {"k2:layers": res}}}})["cases"]["a"]["paths"]["k2:layers"][
            "wasm_bug"
        ]
        == "tfjs-backend-wasm bug"
    )
