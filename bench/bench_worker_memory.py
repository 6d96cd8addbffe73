#!/usr/bin/env python3
"""RSS of the Bazel persistent worker across consecutive large conversions.

Why: a persistent worker that kept weights (or allocator slack) between requests would
make every later action on the machine pay for the largest model ever converted.  The
worker (``rules/private/tfjs_convert_tool.py --persistent_worker``, the process Bazel
runs, speaking Bazel's JSON worker protocol) first converts a tiny model (its baseline:
TensorFlow imported), then the given SavedModel ``--runs`` times; after each response
its VmRSS and peak (VmHWM) are read from /proc.

    .venv/bin/python bench/bench_worker_memory.py [SAVED_MODEL] [--runs 3]

Without SAVED_MODEL (``./dev bench``) a 0.6 GB model is built (``streaming_models``) and
deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402
import streaming_models  # noqa: E402


def _status(pid: int) -> Dict[str, int]:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return {
            line.split(":")[0]: int(line.split()[1]) // 1024
            for line in f
            if line.startswith(("VmRSS:", "VmHWM:"))
        }


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("saved_model", nargs="?", default=None)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_worker-", dir=str(REPO / ".cache")))
    env = dict(os.environ, PYTHONPATH=str(REPO / "converter"), TF_CPP_MIN_LOG_LEVEL="3")
    tiny = work / "tiny_sm"
    try:
        subprocess.run(
            [common.PYTHON, str(HERE / "streaming_models.py"), "build", str(tiny), "2", "64", "0"],
            check=True,
            env=env,
            capture_output=True,
        )
        if args.saved_model is None:
            args.saved_model = str(work / "sm_0.6")
            subprocess.run(
                [
                    common.PYTHON,
                    str(HERE / "streaming_models.py"),
                    "build",
                    args.saved_model,
                    "2",
                    "8660",
                    "0",
                ],
                check=True,
                env=env,
                capture_output=True,
            )
        worker = subprocess.Popen(
            [common.PYTHON, str(REPO / "rules/private/tfjs_convert_tool.py"), "--persistent_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert worker.stdin is not None and worker.stdout is not None
        rows: List[List[object]] = []
        jobs = [("tiny model (baseline)", str(tiny))] + [
            (f"{args.saved_model} #{i + 1}", args.saved_model) for i in range(args.runs)
        ]
        for i, (label, src) in enumerate(jobs):
            out = work / f"out{i}"
            request = {
                "arguments": [
                    "--input_format=tf_saved_model",
                    "--output_format=tfjs_graph_model",
                    "--quiet",
                    src,
                    str(out),
                ],
                "requestId": i,
            }
            worker.stdin.write((json.dumps(request) + "\n").encode())
            worker.stdin.flush()
            response = json.loads(worker.stdout.readline())
            status = _status(worker.pid)
            verdict = (
                streaming_models.check(str(out), src)
                if response["exitCode"] == 0
                else response["output"][-200:]
            )
            rows.append([label, response["exitCode"], status["VmRSS"], status["VmHWM"], verdict])
            print(rows[-1], flush=True)
            shutil.rmtree(out, ignore_errors=True)
        worker.stdin.close()
        worker.wait(timeout=60)
        print(
            "\n"
            + common.markdown_table(
                ["request", "exit", "RSS after MB", "peak so far MB", "output check"], rows
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
