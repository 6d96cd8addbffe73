"""A conversion-time mirror of ``tf.loadLayersModel`` in TensorFlow.js 4.22.

tfjs-layers refuses a model at load time when a layer class is not registered
(``data/tfjs_layers_classes.json``), when a layer's config carries something its
constructor rejects (``GRU(reset_after=True)``), and when the weight manifest and the
variables the layers create do not pair up one to one ("Provided weight data has no
target variable", "N of M weights are not set"). A converter that exits 0 must not
write such a model, so every layers conversion runs ``check_model`` -- pure Python on
the config and the weight names/shapes, no Node -- and refuses with one line naming
the layer and the alternative (the graph format).

The weight pairing follows ``Container.loadWeights``: a provided name matches a
variable's scoped name (``dense/kernel``) or, failing that, the name with its
second-to-last component removed (``lstm/lstm_cell/kernel`` -> ``lstm/kernel``).
"""

from collections.abc import Mapping, Sequence
from typing import Any

from tfjsconv.errors import ConversionError
from tfjsconv.layers.check_batch_norm import batch_norm_problems
from tfjsconv.layers.check_classes import Problem, class_problems, refusal_text
from tfjsconv.layers.check_masks import mask_problems
from tfjsconv.layers.check_weights import weight_problems


def check_model(model_topology: Any, weights: Sequence[tuple[str, Sequence[int]]]) -> list[Problem]:
    """Every reason tfjs-layers 4.22 would refuse this model (empty: it loads).

    ``model_topology`` is a layers model's ``modelTopology`` (or a bare model config);
    ``weights`` the manifest's (name, shape) pairs.
    """
    if not isinstance(model_topology, dict):
        return []
    config = model_topology.get("model_config", model_topology)
    found = class_problems(config) + batch_norm_problems(config)
    if not found:  # weight pairing is meaningless when the layers cannot be built
        found += weight_problems(config, weights) + mask_problems(config)
    return found


def check_model_json(model_json: Mapping[str, Any]) -> list[Problem]:
    """``check_model`` on a parsed layers ``model.json`` (its topology and manifest)."""
    weights = [
        (str(w.get("name")), tuple(w.get("shape") or ()))
        for group in model_json.get("weightsManifest") or []
        for w in group.get("weights") or []
    ]
    return check_model(model_json.get("modelTopology"), weights)


def ensure_loadable(model_topology: Any, weights: Sequence[tuple[str, Sequence[int]]]) -> None:
    """Raise a one-line ``ConversionError`` when tfjs-layers 4.22 would refuse the model."""
    problems = check_model(model_topology, weights)
    if problems:
        raise ConversionError(refusal_text(problems))
