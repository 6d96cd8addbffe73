"""MODULE.bazel (bzlmod) and WORKSPACE (Bazel 4.2.3) describe the same repositories.

Both Bazels build everything in `./dev test`; this catches the two files drifting apart
without running either (e.g. a bazel_dep added for Bazel 7 but no WORKSPACE entry).

    .venv/bin/python -m pytest tests/bazel/test_module_workspace.py -q
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Repositories only Bazel 4 needs declared: it would download them (rules_cc,
# rules_java, remote_coverage_tools); a module gets them from Bazel itself.
WORKSPACE_ONLY = {"rules_cc", "rules_java", "remote_coverage_tools"}
# Modules Bazel 4.2.3 bundles, so WORKSPACE does not declare them.
BUILT_INTO_BAZEL4 = {"platforms"}


def _names(pattern: str, text: str) -> set[str]:
    return set(re.findall(pattern, text, flags=re.DOTALL))


def module_repos() -> set[str]:
    text = (REPO / "MODULE.bazel").read_text()
    deps = _names(r'bazel_dep\(\s*name\s*=\s*"([^"]+)"', text)
    used: set[str] = set()
    for args in re.findall(r"use_repo\(([^)]*)\)", text):
        used |= set(re.findall(r'"([^"]+)"', args))
    return deps | used


def workspace_repos() -> set[str]:
    text = (REPO / "WORKSPACE").read_text()
    repos = _names(r'local_repository\(\s*name\s*=\s*"([^"]+)"', text)
    # tfjs_repositories(name = X) creates what rules/repositories.bzl's body names:
    # `name = name` (X), `name = name + "_suffix"` (X_suffix) or a literal name.
    body = (REPO / "rules" / "repositories.bzl").read_text().split("def tfjs_repositories", 1)[1]
    created = re.findall(r'_tfjs_\w+\(\s*name\s*=\s*(name(?:\s*\+\s*"[^"]+")?|"[^"]+")', body)
    assert created, "tfjs_repositories creates no repository?"
    for name in _names(r'tfjs_repositories\(\s*name\s*=\s*"([^"]+)"', text):
        for expr in created:
            if expr.startswith('"'):
                repos.add(expr.strip('"'))
            else:
                repos.add(name + "".join(re.findall(r'"([^"]+)"', expr)))
    return repos


def toolchains(path: str) -> set[str]:
    return _names(r'register_toolchains\(\s*"([^"]+)"', (REPO / path).read_text())


def test_both_files_declare_the_same_repositories() -> None:
    module, workspace = module_repos(), workspace_repos()
    assert {
        "bazel_skylib",
        "rules_python",
        "tfjs_npm",
        "tfjs_pip",
        "tfjs_pip_python",
        "tfjs_python",
    } <= module
    assert module - BUILT_INTO_BAZEL4 == workspace - WORKSPACE_ONLY


def test_both_files_register_the_python_toolchain() -> None:
    toolchain = "//rules/private/python:python3_toolchain"
    assert toolchain in toolchains("MODULE.bazel")
    assert toolchain in toolchains("WORKSPACE")
    # skylib's own MODULE.bazel registers its unittest toolchains; WORKSPACE must do it.
    assert toolchains("WORKSPACE") - {toolchain} == {"@bazel_skylib//toolchains/unittest:all"}
