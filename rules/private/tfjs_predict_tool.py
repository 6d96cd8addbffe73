"""The `TfjsPredict` action of tfjs_model_test: TensorFlow's own outputs for the test inputs.

    tfjs_predict_tool --format keras|keras_keras|tf_saved_model --model PATH
        --inputs inputs.json --output expected.json [--signature_name NAME]

Keras files are loaded the way the converter loads them (tf_keras for Keras 2 h5,
Keras 3 otherwise); SavedModels run their signature and name the outputs by signature
key (sorted). The JSON formats are those of ``tfjs_model_test_runner.js``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any


def _read_inputs(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)["inputs"]


def _array(spec: dict[str, Any]) -> Any:
    import numpy as np

    return np.asarray(spec["data"], dtype=spec.get("dtype", "float32")).reshape(spec["shape"])


def _as_output(name: Any, value: Any) -> dict[str, Any]:
    import numpy as np

    arr = np.asarray(value)
    out: dict[str, Any] = {
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "data": [v.item() if hasattr(v, "item") else v for v in arr.reshape(-1)],
    }
    if name is not None:
        out["name"] = name
    return out


def predict_keras(model_path: str, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from tfjsconv.graph.keras_graph import load_keras
    from tfjsconv.options import ConversionOptions

    fmt = "keras_keras" if model_path.endswith(".keras") else "keras"
    model = load_keras(model_path, ConversionOptions(input_format=fmt, output_format="tfjs_graph_model"))
    xs = [_array(s) for s in specs]
    result = model(xs[0] if len(xs) == 1 else xs, training=False)
    outs = result if isinstance(result, (list, tuple)) else [result]
    return [_as_output(None, o) for o in outs]


def predict_saved_model(path: str, specs: list[dict[str, Any]], signature: str) -> list[dict[str, Any]]:
    import tensorflow as tf

    fn = tf.saved_model.load(path).signatures[signature or "serving_default"]
    names = sorted(fn.structured_input_signature[1])
    given = [s.get("name") for s in specs]
    feed_names = given if all(given) else names
    res = fn(**{n: tf.constant(_array(s)) for n, s in zip(feed_names, specs, strict=False)})
    return [_as_output(k, res[k].numpy()) for k in sorted(res)]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="tfjs_predict_tool", description=__doc__.splitlines()[0])
    parser.add_argument("--format", required=True, choices=["keras", "keras_keras", "tf_saved_model"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--signature_name", default="")
    args = parser.parse_args(argv)

    home = tempfile.mkdtemp(prefix="tfjs_predict_home_")  # Keras wants a writable ~/.keras
    os.environ["HOME"] = home
    try:
        from tfjsconv import tf_env

        tf_env.configure()
        specs = _read_inputs(args.inputs)
        if args.format == "tf_saved_model":
            outputs = predict_saved_model(args.model, specs, args.signature_name)
        else:
            outputs = predict_keras(args.model, specs)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump({"outputs": outputs}, f, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
