"""Benchmark: N models converted by Bazel (workers vs no workers) vs N CLI runs.

    .venv/bin/python bench/bench_bazel.py [--small 10] [--no-mobilenet] [--keep]

Builds a temporary copy of this workspace with a `bench_models` package holding
`--small` seeded tf_keras MLPs (.h5) and one MobileNetV2 (weights=None, seeded
initializers, ~14 MB h5), each converted keras -> tfjs_graph_model. Measures, wall
clock on this machine:

* Bazel cold, persistent workers (`--strategy=TfjsConvert=worker`): server and
  workers stopped, outputs cleaned, so the time includes analysis and TF imports;
* Bazel cold, persistent workers without worker sandboxing (`--noworker_sandboxing`),
  to show what the `.bazelrc` default `--worker_sandboxing` costs;
* Bazel cold, no workers (`--strategy=TfjsConvert=linux-sandbox`): one process per model;
* N sequential `tensorflowjs_converter` CLI runs (this package, fresh process each);
* the reference converter, if `REFERENCE_CONVERTER` names its executable
  (e.g. `REFERENCE_CONVERTER=$(bench/setup_reference.sh)`);
* a no-op rebuild (everything up to date).

Prints a markdown table. Bazel's own startup is included in every Bazel row.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "python")
)
import checkout  # noqa: E402
import common  # noqa: E402

REPO = common.REPO
BAZEL = shutil.which("bazel") or "bazel"


_GENERATE = r"""
import os, sys
import numpy as np
import tf_keras
out, small, mobilenet = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
tf_keras.utils.set_random_seed(0)
for i in range(small):
    width = 16 * (i % 4 + 1)
    model = tf_keras.Sequential([
        tf_keras.layers.Dense(width, activation="relu", input_shape=(8 + i,)),
        tf_keras.layers.Dense(width, activation="relu"),
        tf_keras.layers.Dense(3, activation="softmax"),
    ])
    model.save(os.path.join(out, "small_%02d.h5" % i), save_format="h5")
if mobilenet:
    model = tf_keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    model.save(os.path.join(out, "mobilenet_v2.h5"), save_format="h5")
"""


def timed_run(cmd: Sequence[str], cwd: str, env=None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
    return wall


def make_workspace(root: str, small: int, mobilenet: bool, source: str = str(REPO)) -> list[str]:
    """Copy the checkout ``source`` to ``root``/ws and add the `bench_models` package;
    return [the workspace, the model names]."""
    ws = os.path.join(root, "ws")
    checkout.copy_checkout(Path(ws), Path(source))
    pkg = os.path.join(ws, "bench_models")
    os.makedirs(pkg)
    gen = subprocess.run(
        [common.VENV_PYTHON, "-c", _GENERATE, pkg, str(small), "1" if mobilenet else "0"],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True,
        text=True,
    )
    if gen.returncode != 0:
        raise SystemExit(f"generating models failed:\n{gen.stderr[-4000:]}")
    names = sorted(f[:-3] for f in os.listdir(pkg) if f.endswith(".h5"))
    rules = ['load("//rules:defs.bzl", "tfjs_model")\n']
    for n in names:
        rules.append(
            f'tfjs_model(name = "{n}", src = "{n}.h5", input_format = "keras", '
            'output_format = "tfjs_graph_model")\n'
        )
    with open(os.path.join(pkg, "BUILD.bazel"), "w") as f:
        f.write("\n".join(rules))
    return [ws] + names


def bazel_cold(ws: str, ob: str, strategy: str, target: str = "//bench_models:all", *flags: str) -> float:
    base = [BAZEL, f"--output_base={ob}"]
    subprocess.run(base + ["clean"], cwd=ws, capture_output=True)
    subprocess.run(base + ["shutdown"], cwd=ws, capture_output=True)
    return timed_run(base + ["build", f"--strategy=TfjsConvert={strategy}", *flags, target], ws)


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", type=int, default=10, help="number of small MLP models")
    p.add_argument("--no-mobilenet", action="store_true", help="skip the MobileNetV2 model")
    p.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    p.add_argument("--bazel-only", action="store_true", help="only the cold Bazel rows (strategies)")
    args = p.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="bench_bazel_")
    try:
        ws, *names = make_workspace(tmp, args.small, not args.no_mobilenet)
        ob = os.path.join(tmp, "output_base")
        n = len(names)
        rows = []
        # Warm the repository/fetch step once so no row pays for the pip install.
        timed_run([BAZEL, f"--output_base={ob}", "build", "--nobuild", "//bench_models:all"], ws)

        def digests() -> list[str]:
            return [common.tree_digest(os.path.join(ws, "bazel-bin", "bench_models", m)) for m in names]

        t = bazel_cold(ws, ob, "linux-sandbox")
        rows.append(["bazel cold, no workers (linux-sandbox)", n, f"{t:.1f}", f"{t / n:.2f}"])
        sandboxed = digests()
        t_all_workers = t = bazel_cold(ws, ob, "worker")
        rows.append(
            ["bazel cold, persistent workers (.bazelrc: --worker_sandboxing)", n, f"{t:.1f}", f"{t / n:.2f}"]
        )
        identical = digests() == sandboxed
        t = bazel_cold(ws, ob, "worker", "//bench_models:all", "--noworker_sandboxing")
        rows.append(["bazel cold, persistent workers, --noworker_sandboxing", n, f"{t:.1f}", f"{t / n:.2f}"])
        identical = identical and digests() == sandboxed
        if args.bazel_only:
            subprocess.run([BAZEL, f"--output_base={ob}", "shutdown"], cwd=ws, capture_output=True)
            print(f"worker and sandboxed outputs byte-identical: {'yes' if identical else 'NO'}")
            print(common.markdown_table(["scenario", "models", "wall s", "s/model"], rows))
            return 0
        t = timed_run([BAZEL, f"--output_base={ob}", "build", "//bench_models:all"], ws)
        rows.append(["bazel no-op rebuild", n, f"{t:.2f}", "-"])

        cli = [common.VENV_PYTHON, "-m", "tfjsconv.cli"]
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "converter"), TF_CPP_MIN_LOG_LEVEL="2")
        out_root = os.path.join(tmp, "cli_out")
        per_model = {}
        for name in names:
            per_model[name] = timed_run(
                cli
                + [
                    "--input_format=keras",
                    "--output_format=tfjs_graph_model",
                    "--quiet",
                    os.path.join(ws, "bench_models", name + ".h5"),
                    os.path.join(out_root, name),
                ],
                cwd=tmp,
                env=env,
            )
        t = sum(per_model.values())
        rows.append(["tfjsconv CLI, sequential processes", n, f"{t:.1f}", f"{t / n:.2f}"])
        largest = max(
            sorted(per_model), key=lambda m: os.path.getsize(os.path.join(ws, "bench_models", m + ".h5"))
        )
        rows.append(
            [
                f"tfjsconv CLI, largest model alone ({largest})",
                1,
                f"{per_model[largest]:.1f}",
                f"{per_model[largest]:.2f}",
            ]
        )
        t_largest_bazel = bazel_cold(ws, ob, "worker", f"//bench_models:{largest}")
        rows.append(
            [
                f"bazel cold, largest model alone ({largest}, worker)",
                1,
                f"{t_largest_bazel:.1f}",
                f"{t_largest_bazel:.2f}",
            ]
        )

        reference = os.environ.get("REFERENCE_CONVERTER")
        if reference:
            ref_root = os.path.join(tmp, "ref_out")
            start = time.perf_counter()
            for name in names:
                timed_run(
                    [
                        reference,
                        "--input_format=keras",
                        "--output_format=tfjs_graph_model",
                        os.path.join(ws, "bench_models", name + ".h5"),
                        os.path.join(ref_root, name),
                    ],
                    cwd=tmp,
                )
            t = time.perf_counter() - start
            rows.append(["reference tensorflowjs_converter 4.22.0", n, f"{t:.1f}", f"{t / n:.2f}"])

        subprocess.run([BAZEL, f"--output_base={ob}", "shutdown"], cwd=ws, capture_output=True)
        print(f"models: {', '.join(names)}  (cores: {os.cpu_count()})")
        print(f"worker and sandboxed outputs byte-identical: {'yes' if identical else 'NO'}")
        print(common.markdown_table(["scenario", "models", "wall s", "s/model"], rows))
        print(
            f"\nall {n} models with workers / largest model alone: "
            f"{t_all_workers / t_largest_bazel:.2f}x (bazel cold), "
            f"{t_all_workers / per_model[largest]:.2f}x (vs its CLI run)"
        )
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            subprocess.run(["chmod", "-R", "u+w", tmp], capture_output=True)  # Bazel's outputs are read-only
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
