"""Memory/time of ``write_weights`` and ``read_weights`` on a large synthetic model.

Shows the writer streams: its peak memory above the input arrays is about one weight
(plus a float64 temporary while quantizing), not a second copy of all weights.

    .venv/bin/python bench/bench_weights.py [--mb 256] [--weights 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

_CHILD = r"""
import json, os, resource, sys, time
import numpy as np
sys.path.insert(0, os.path.join(sys.argv[1], "converter"))
from tfjsconv.weights import read_weights, write_weights
mb, count, mode, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if mode == "read":
    from tfjsconv.model_json import load_model_json
    manifest = load_model_json(os.path.join(out, "manifest.json"))["m"]
    base = rss()
    start = time.perf_counter()
    back = read_weights(manifest, out)
else:
    n = mb * 1024 * 1024 // 4 // count
    rng = np.random.default_rng(0)
    weights = [(f"layer{i}/kernel", rng.standard_normal(n, dtype=np.float32)) for i in range(count)]
    base = rss()
    start = time.perf_counter()
    q = {"uint8": True} if mode == "uint8" else {"float16": True} if mode == "float16" else None
    manifest = write_weights([weights], out, quantization=q)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"m": manifest}, f)
print(json.dumps({"wall_s": time.perf_counter() - start, "base_mb": base, "peak_mb": rss()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="total float32 weight size")
    parser.add_argument("--weights", type=int, default=8, help="number of weights")
    args = parser.parse_args()
    rows = []
    shared = tempfile.mkdtemp()
    for mode in ("float32", "read", "uint8", "float16"):
        # "read" reads back what the preceding float32 run wrote.
        with tempfile.TemporaryDirectory() as fresh:
            out = shared if mode == "read" else fresh
            r = common.measure(
                [common.PYTHON, "-c", _CHILD, common.REPO, str(args.mb), str(args.weights), mode, out]
            )
            if not r.ok:
                rows.append([mode, "FAILED", r.last_error_line(), "", ""])
                continue
            data = json.loads(r.stdout.strip().splitlines()[-1])
            if mode == "float32":
                shutil.rmtree(shared, ignore_errors=True)
                shutil.copytree(out, shared)
            rows.append(
                [
                    mode,
                    f"{data['wall_s']:.2f}",
                    round(data["base_mb"]),
                    round(data["peak_mb"]),
                    round(data["peak_mb"] - data["base_mb"]),
                ]
            )
    shutil.rmtree(shared, ignore_errors=True)
    print(f"write/read {args.mb} MB float32 in {args.weights} weights ({args.mb // args.weights} MB each)\n")
    print(common.markdown_table(["mode", "wall s", "RSS before MB", "peak RSS MB", "peak - before MB"], rows))


if __name__ == "__main__":
    main()
