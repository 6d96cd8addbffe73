"""The reach corpus: every published architecture of ``keras.applications`` (Keras 3) and
``tf_keras.applications`` (Keras 2), enumerated from the modules, not listed by hand.

A case is one constructor of one Keras version, built with ``weights=None`` (random
weights, seeded), ``classes=2`` and no classifier activation (logits compare more
sharply than a saturated softmax), at the smallest square input the constructor
accepts (``MIN_SIDES`` tried in order). Each case is saved in every file format its
Keras version writes and converted along every path that starts from one:

* Keras 2: ``.h5`` -> layers / graph, tf_keras SavedModel (``model.save(dir)``) ->
  graph (as ``tf_saved_model``) / layers (as ``keras_saved_model``);
* Keras 3: ``.keras`` -> layers / graph, ``model.export(dir)`` -> graph;
* KerasHub (``hub``, Keras 3 paths): a text encoder (BERT), a causal decoder (GPT-2) and
  a ViT, each backbone built from a small config (``HUB_CONFIGS``) with random weights;
  their inputs are named (token ids, padding mask, ...) and BERT has two outputs.

``tools/reach_corpus.py`` runs the cases (ours and the reference converter) and writes
``docs/reach.json``; ``tools/reach_table.py`` renders ``docs/reach.md`` and the README
line; ``tests/python/test_reach_corpus.py`` runs a sample in CI and fails when the
committed table no longer lists exactly the constructors enumerated here.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable
from typing import Any

import numpy as np

SEED = 1234
CLASSES = 2
# Smallest input sides tried, in order: 32 is the documented minimum of most families,
# 71 Xception's, 75 the Inception ones'.
MIN_SIDES = (32, 71, 75, 96, 128, 160, 192, 224, 331)
FLAVORS = ("k2", "k3", "hub")
# KerasHub backbones: small configs of the published architectures (the classes are the
# published ones; only the sizes are small). The input side is the sequence length of
# the text models and the image side of the ViT.
_TEXT_BACKBONE = dict(
    vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=8
)
HUB_CONFIGS: dict[str, dict[str, Any]] = {
    "BertBackbone": _TEXT_BACKBONE,
    "GPT2Backbone": _TEXT_BACKBONE,
    "ViTBackbone": dict(patch_size=4, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64),
}
HUB_SIDES = {"BertBackbone": 8, "GPT2Backbone": 8, "ViTBackbone": 16}


@dataclasses.dataclass(frozen=True)
class Path:
    """One conversion path: saved source format -> tfjs output, and the input_format of both converters."""

    name: str
    source: str  # "h5", "savedmodel", "keras", "export"
    input_format: str
    output_format: str

    @property
    def kind(self) -> str:
        return "layers" if self.output_format == "tfjs_layers_model" else "graph"


PATHS: dict[str, tuple[Path, ...]] = {
    "k2": (
        Path("h5 → layers", "h5", "keras", "tfjs_layers_model"),
        Path("h5 → graph", "h5", "keras", "tfjs_graph_model"),
        Path("SavedModel → graph", "savedmodel", "tf_saved_model", "tfjs_graph_model"),
        Path("SavedModel → layers", "savedmodel", "keras_saved_model", "tfjs_layers_model"),
    ),
    "k3": (
        Path(".keras → layers", "keras", "keras_keras", "tfjs_layers_model"),
        Path(".keras → graph", "keras", "keras_keras", "tfjs_graph_model"),
        Path("export → graph", "export", "tf_saved_model", "tfjs_graph_model"),
    ),
}
PATHS["hub"] = PATHS["k3"]
# The (input_format, output_format) pairs the reference converter (tensorflowjs 4.22.0)
# dispatches; any other pair it refuses before reading the file.
REFERENCE_PAIRS = frozenset(
    {
        ("keras", "tfjs_layers_model"),
        ("keras", "tfjs_graph_model"),
        ("keras_keras", "tfjs_layers_model"),
        ("keras_saved_model", "tfjs_layers_model"),
        ("tf_saved_model", "tfjs_graph_model"),
    }
)


def keras_module(flavor: str) -> Any:
    if flavor == "k2":
        import tf_keras

        return tf_keras
    import keras

    return keras


def constructors(flavor: str) -> dict[str, Callable[..., Any]]:
    """Name -> constructor: every public callable of ``<keras>.applications`` that builds a
    model; for ``hub`` the KerasHub backbone classes of ``HUB_CONFIGS``."""
    if flavor == "hub":
        import keras_hub

        return {name: getattr(keras_hub.models, name) for name in sorted(HUB_CONFIGS)}
    apps = keras_module(flavor).applications
    found: dict[str, Callable[..., Any]] = {}
    for name in sorted(dir(apps)):
        obj = getattr(apps, name)
        if name.startswith("_") or inspect.ismodule(obj) or not callable(obj):
            continue
        params = inspect.signature(obj).parameters
        if "weights" in params and "include_top" in params:
            found[name] = obj
    return found


def family(fn: Callable[..., Any]) -> str:
    """The application module a constructor lives in (``convnext``, ``resnet_rs``,
    ``bert_backbone``...)."""
    return fn.__module__.rsplit(".", 1)[-1]


def is_hub(fn: Callable[..., Any]) -> bool:
    return fn.__module__.startswith("keras_hub.")


def case_ids() -> list[str]:
    """Every case, ``<flavor>/<constructor>``, sorted."""
    return sorted(f"{flavor}/{name}" for flavor in FLAVORS for name in constructors(flavor))


def case_families() -> dict[str, str]:
    return {f"{flavor}/{name}": family(fn) for flavor in FLAVORS for name, fn in constructors(flavor).items()}


def kwargs_for(fn: Callable[..., Any], side: int) -> dict[str, Any]:
    if is_hub(fn):
        kw = dict(HUB_CONFIGS[fn.__name__])
        if "image_shape" in inspect.signature(fn).parameters:
            kw["image_shape"] = (side, side, 3)
        return kw
    params = inspect.signature(fn).parameters
    forwards = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kw: dict[str, Any] = {"weights": None, "include_top": True, "input_shape": (side, side, 3)}
    if "classes" in params or forwards:
        kw["classes"] = CLASSES
    if "classifier_activation" in params or forwards:
        kw["classifier_activation"] = None
    return kw


def seed(flavor: str) -> None:
    import tensorflow as tf

    np.random.seed(SEED)
    tf.random.set_seed(SEED)
    if flavor == "k3":
        import keras

        keras.utils.set_random_seed(SEED)


def build(case_id: str) -> tuple[Any, int]:
    """(model, input side): the constructor at the smallest side it accepts."""
    flavor, name = case_id.split("/", 1)
    K = keras_module(flavor)
    fn = constructors(flavor)[name]
    errors = []
    for side in (HUB_SIDES[name],) if flavor == "hub" else MIN_SIDES:
        K.backend.clear_session()
        seed(flavor)
        try:
            return fn(**kwargs_for(fn, side)), side
        except ValueError as exc:  # below this family's minimum: try the next side
            errors.append(f"{side}: {str(exc).splitlines()[0][:120]}")
    raise ValueError(f"{case_id}: no input side in {MIN_SIDES} builds: " + "; ".join(errors))


# A model's inputs: a list in input order (applications: one image), or arrays by input
# name (KerasHub backbones: ``token_ids``, ``padding_mask``...).
Inputs = list[np.ndarray] | dict[str, np.ndarray]


def _draw(case_id: str, side: int, n: int, rng: np.random.Generator) -> Inputs:
    name = case_id.split("/", 1)[1]
    if not case_id.startswith("hub/"):
        # Random pixel values in [0, 255] (the applications rescale inside).
        return [rng.uniform(0.0, 255.0, (n, side, side, 3)).astype(np.float32)]
    if name == "ViTBackbone":  # a backbone: no rescaling inside, images in [0, 1]
        return {"images": rng.uniform(0.0, 1.0, (n, side, side, 3)).astype(np.float32)}
    vocab = HUB_CONFIGS[name]["vocabulary_size"]
    mask = np.ones((n, side), np.int32)
    mask[:, side - 2 :] = 0  # the last two positions are padding
    x = {"token_ids": rng.integers(1, vocab, (n, side)).astype(np.int32), "padding_mask": mask}
    if name == "BertBackbone":
        x["segment_ids"] = (np.arange(side)[None, :] >= side // 2).astype(np.int32).repeat(n, axis=0)
    return x


def inputs(case_id: str, side: int) -> Inputs:
    """The case's test input: one image, or one sequence of random token ids."""
    return _draw(case_id, side, 1, np.random.default_rng(SEED))


# Inputs the tolerance's float32-vs-float64 spread is measured on (see
# reach_run.calibrated_tolerance): the tested one and 15 more from the same distribution.
CALIBRATION_IMAGES = 16


def calibration_inputs(case_id: str, side: int) -> Inputs:
    """``inputs``'s example followed by ``CALIBRATION_IMAGES - 1`` more, one batch."""
    first = inputs(case_id, side)
    more = _draw(case_id, side, CALIBRATION_IMAGES - 1, np.random.default_rng(SEED + 1))
    if isinstance(first, dict):
        assert isinstance(more, dict)
        return {k: np.concatenate([first[k], more[k]]) for k in first}
    return [np.concatenate([a, b]) for a, b in zip(first, more, strict=True)]


def save(flavor: str, model: Any, source: str, out_dir: str) -> str:
    """Write ``model`` as ``source`` under ``out_dir`` (its own subdirectory: the reference
    converter unpacks a ``.keras`` next to the file) and return the path."""
    where = os.path.join(out_dir, source)
    os.makedirs(where, exist_ok=True)
    if source == "h5":
        path = os.path.join(where, "model.h5")
        model.save(path)
    elif source == "savedmodel":
        path = os.path.join(where, "saved_model")
        model.save(path, save_format="tf")
    elif source == "keras":
        path = os.path.join(where, "model.keras")
        model.save(path)
    elif source == "export":
        path = os.path.join(where, "saved_model")
        model.export(path, format="tf_saved_model", verbose=False)
    else:
        raise ValueError(f"unknown source format {source!r}")
    return path
