#!/usr/bin/env python3
"""RSS of the Bazel persistent worker across consecutive large conversions.

Why: a persistent worker that kept weights (or allocator slack) between requests would
make every later action on the machine pay for the largest model ever converted.

By default this goes through Bazel, as a user's build does: a scratch copy of this
workspace gets a package ``big`` holding a SavedModel of ``--gb`` GB of float32 weights
(``streaming_models``, 300 MB kernels) and, first, a tiny one. Bazel 4.2.3 builds, one
``bazel build`` each, with ``--strategy=TfjsConvert=worker`` (and the ``.bazelrc``'s
worker sandboxing): the tiny model (the worker's baseline: TensorFlow imported), then
three large conversions of the same SavedModel (float32, float16, uint8 outputs: three
actions, so nothing is cached). After each build the worker process's VmRSS and peak
(VmHWM) are read from /proc, and the output is checked against the checkpoint.

``--direct`` drives ``rules/private/tfjs_convert_tool.py --persistent_worker`` itself over
Bazel's JSON worker protocol instead (no Bazel; quicker to iterate).

    .venv/bin/python bench/bench_worker_memory.py [--gb 2.4] [--direct]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "python"))

import checkout  # noqa: E402
import common  # noqa: E402
import streaming_models  # noqa: E402

DIM = 8660  # 300 MB float32 kernels, as in bench_streaming.py
BAZEL = shutil.which("bazel") or "bazel"
# (target, rule call) for the three large conversions, in build order.
LARGE = [
    ("big_float32", 'tfjs_model(name = "big_float32", src = ":big_sm", input_format = "tf_saved_model")'),
    (
        "big_float16",
        'tfjs_quantized_model(name = "big_float16", src = ":big_sm", dtype = "float16", '
        'input_format = "tf_saved_model")',
    ),
    (
        "big_uint8",
        'tfjs_quantized_model(name = "big_uint8", src = ":big_sm", dtype = "uint8", '
        'input_format = "tf_saved_model")',
    ),
]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO / "converter"), TF_CPP_MIN_LOG_LEVEL="3")


def _status(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return {
            line.split(":")[0]: int(line.split()[1]) // 1024
            for line in f
            if line.startswith(("VmRSS:", "VmHWM:"))
        }


def _build_model(path: Path, layers: int, dim: int) -> None:
    subprocess.run(
        [
            common.PYTHON,
            str(HERE / "streaming_models.py"),
            "build",
            str(path),
            str(layers),
            str(dim),
            "plain",
        ],
        check=True,
        env=_env(),
        capture_output=True,
    )


def _workers() -> list[int]:
    """PIDs of running rules_tfjs persistent workers."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"--persistent_worker" in argv and any(a.endswith(b"tfjs_convert_tool.py") for a in argv):
            found.append(int(entry))
    return sorted(found)


def via_bazel(work: Path, layers: int) -> list[list[object]]:
    ws = checkout.copy_checkout(work / "ws")
    pkg = ws / "big"
    _build_model(pkg / "tiny_sm", 2, 64)
    _build_model(pkg / "big_sm", layers, DIM)
    rules = [
        'load("//rules:defs.bzl", "tfjs_model", "tfjs_quantized_model")',
        'filegroup(name = "tiny_sm", srcs = glob(["tiny_sm/**"]))',
        'filegroup(name = "big_sm", srcs = glob(["big_sm/**"]))',
        'tfjs_model(name = "tiny", src = ":tiny_sm", input_format = "tf_saved_model")',
    ] + [call for _, call in LARGE]
    (pkg / "BUILD.bazel").write_text("\n".join(rules) + "\n")
    base = [BAZEL, f"--output_base={work / 'ob'}"]
    rows: list[list[object]] = []
    try:
        for target in ["tiny"] + [name for name, _ in LARGE]:
            proc = subprocess.run(
                base + ["build", "--strategy=TfjsConvert=worker", f"//big:{target}"],
                cwd=ws,
                capture_output=True,
                text=True,
            )
            pids = _workers()
            stats = [_status(pid) for pid in pids]
            out = ws / "bazel-bin" / "big" / target
            if proc.returncode != 0:
                verdict = proc.stderr.strip().splitlines()[-1][:200]
            elif target == "tiny":
                verdict = "ok" if (out / "model.json").exists() else "no model.json"
            else:
                verdict = streaming_models.check(str(out), str(pkg / "big_sm"))
            rows.append(
                [
                    f"bazel build //big:{target}",
                    proc.returncode,
                    ", ".join(str(p) for p in pids) or "none",
                    ", ".join(str(s["VmRSS"]) for s in stats),
                    ", ".join(str(s["VmHWM"]) for s in stats),
                    verdict,
                ]
            )
            print(rows[-1], flush=True)
    finally:
        subprocess.run(base + ["shutdown"], cwd=ws, capture_output=True)
    return rows


def _request(worker: subprocess.Popen, i: int, src: str, out: Path, flags: Sequence[str]) -> dict:
    assert worker.stdin is not None and worker.stdout is not None
    request = {
        "arguments": [
            "--input_format=tf_saved_model",
            "--output_format=tfjs_graph_model",
            "--quiet",
            *flags,
            src,
            str(out),
        ],
        "requestId": i,
    }
    worker.stdin.write((json.dumps(request) + "\n").encode())
    worker.stdin.flush()
    return json.loads(worker.stdout.readline())


def direct(work: Path, layers: int) -> list[list[object]]:
    tiny, big = work / "tiny_sm", work / "big_sm"
    _build_model(tiny, 2, 64)
    _build_model(big, layers, DIM)
    worker = subprocess.Popen(
        [common.PYTHON, str(REPO / "rules/private/tfjs_convert_tool.py"), "--persistent_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    jobs: list[tuple[str, Path, Sequence[str]]] = [
        ("tiny model (baseline)", tiny, ()),
        ("large, float32", big, ()),
        ("large, float16", big, ("--quantize_float16",)),
        ("large, uint8", big, ("--quantize_uint8",)),
    ]
    rows: list[list[object]] = []
    for i, (label, src, flags) in enumerate(jobs):
        out = work / f"out{i}"
        response = _request(worker, i, str(src), out, flags)
        status = _status(worker.pid)
        if response["exitCode"] != 0:
            verdict = response["output"][-200:]
        else:
            verdict = "ok" if src == tiny else streaming_models.check(str(out), str(src))
        rows.append([label, response["exitCode"], worker.pid, status["VmRSS"], status["VmHWM"], verdict])
        print(rows[-1], flush=True)
        shutil.rmtree(out, ignore_errors=True)
    assert worker.stdin is not None
    worker.stdin.close()
    worker.wait(timeout=60)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=2.4, help="weights of the large model (300 MB a layer)")
    ap.add_argument("--direct", action="store_true", help="drive the worker without Bazel")
    args = ap.parse_args(argv)
    layers = max(1, round(args.gb * 1e9 / (DIM * DIM * 4)))
    work = Path(tempfile.mkdtemp(prefix="bench_worker-", dir=str(REPO / ".cache")))
    try:
        rows = direct(work, layers) if args.direct else via_bazel(work, layers)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    gb = layers * DIM * DIM * 4 / 1e9
    print(f"\nlarge model: {layers} x 300 MB kernels = {gb:.1f} GB of float32 weights")
    print(
        common.markdown_table(
            [
                "conversion",
                "exit",
                "worker pid",
                "worker RSS after MB",
                "worker peak so far MB",
                "output check",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
