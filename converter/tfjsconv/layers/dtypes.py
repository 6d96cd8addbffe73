"""Config dtypes in the one TensorFlow.js holds them in.

tfjs has float32, int32, bool, complex64 and string tensors only. Weights are narrowed
when written (``weight_format.tfjs_dtype``); a layer config keeping ``int64`` or
``float64`` makes tfjs refuse every feed ("The dtype of the feed (int32) can not be cast
to the dtype of the key 'input' (int64)") or create variables of a dtype it cannot hold.
So every ``dtype`` a layer config names -- InputLayer's and each layer's -- is mapped by
the same table the weights use. Keras mixed-precision policy names compute in float16
or bfloat16, which tfjs holds as float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tfjsconv.weight_format import tfjs_dtype

# Names numpy does not know, with the tfjs dtype their values are held in.
_NON_NUMPY: Mapping[str, str] = {
    "bfloat16": "float32",
    "mixed_float16": "float32",
    "mixed_bfloat16": "float32",
    "string": "string",
}

_POLICY_CLASSES = ("Policy", "DTypePolicy", "FloatDTypePolicy")


def config_dtype(value: Any) -> Any:
    """The tfjs dtype for a config's ``dtype`` value (a name, or tf_keras's serialized
    ``Policy``); anything unrecognised is kept (tfjs or the checks then judge it)."""
    if isinstance(value, dict) and value.get("class_name") in _POLICY_CLASSES:
        name = (value.get("config") or {}).get("name")
        return config_dtype(name) if isinstance(name, str) else value
    if not isinstance(value, str):
        return value
    if value in _NON_NUMPY:
        return _NON_NUMPY[value]
    try:
        mapped = tfjs_dtype(np.dtype(value))
    except TypeError:
        return value
    return mapped if mapped is not None else value
