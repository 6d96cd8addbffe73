"""JAX / Flax functions to TensorFlow.js graph models.

The route is JAX -> ``jax2tf`` -> a SavedModel in a private temporary directory -> the
regular SavedModel converter. Two choices matter:

* ``jax2tf`` must lower to *plain TensorFlow ops* (``enable_xla=False``, non-native
  serialization). Native serialization wraps the whole function in one
  ``XlaCallModule`` op, which tfjs cannot run and which TF 2.21 refuses anyway once
  jax's serialization version outgrows it (the reference converter's failure). jax
  0.7.1 is the last release that still has the non-native path, hence the pins in
  ``requirements/jax.in``.
* ``with_gradient=True`` although tfjs graph models are inference only: with
  ``False`` jax2tf wraps every output in ``PreventGradient``, an op tfjs does not
  have, while the custom-gradient functions of ``True`` never reach the frozen graph.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tfjsconv import api
from tfjsconv.errors import ConversionError, UsageError
from tfjsconv.options import ConversionOptions

# The newest jax whose jax2tf can still emit plain TF ops (see the module docstring).
LAST_JAX_WITH_TF_OPS = (0, 7, 1)
JAX_INSTALL_HINT = "pip install -r requirements/jax.in (jax==0.7.1 jaxlib==0.7.1 flax==0.11.2)"

# ConversionOptions fields a caller may not set: this module decides them.
_FIXED_FIELDS = ("input_format", "output_format", "signature_name", "saved_model_tags")


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _import_jax2tf():
    """Import jax2tf, or explain in one line what to install."""
    try:
        import jax
        from jax.experimental import jax2tf
    except ImportError as exc:
        raise ConversionError(f"convert_jax needs jax and jaxlib ({exc}); {JAX_INSTALL_HINT}") from None
    if _version_tuple(jax.__version__) > LAST_JAX_WITH_TF_OPS:
        raise ConversionError(
            f"jax {jax.__version__} can only export XlaCallModule ops, which TensorFlow.js "
            f"cannot run; {JAX_INSTALL_HINT}"
        )
    return jax, jax2tf


def options_from_kwargs(converter_options: Mapping[str, Any]) -> ConversionOptions:
    """``ConversionOptions`` for the SavedModel -> graph step (see ``api.options_from_kwargs``)."""
    return api.options_from_kwargs(
        "tf_saved_model", "tfjs_graph_model", converter_options, fixed=_FIXED_FIELDS, caller="convert_jax"
    )


def jax_to_saved_model(
    apply_fn: Callable[..., Any],
    params: Any,
    *,
    input_signatures: Sequence[Any],
    saved_model_dir: str,
    polymorphic_shapes: Sequence[str | None] | None = None,
) -> None:
    """Write ``apply_fn(params, *inputs)`` as a SavedModel with a ``serving_default`` signature.

    ``input_signatures`` are ``tf.TensorSpec``s, one per input after ``params``;
    ``polymorphic_shapes`` (same length) uses jax2tf's syntax, e.g. ``'(b, ...)'``.
    """
    from tfjsconv import tf_env

    tf = tf_env.import_tensorflow()
    jax, jax2tf = _import_jax2tf()

    input_signatures = list(input_signatures)
    if not input_signatures:
        raise UsageError("convert_jax needs at least one input signature")
    if polymorphic_shapes is not None and len(polymorphic_shapes) != len(input_signatures):
        raise UsageError(
            f"polymorphic_shapes has {len(polymorphic_shapes)} entries but there are "
            f"{len(input_signatures)} input signatures"
        )
    poly = [None] + list(polymorphic_shapes or [None] * len(input_signatures))
    with warnings.catch_warnings():
        # enable_xla=False is deprecated upstream, but it is the only way to get ops tfjs
        # runs; jax2tf warns again while tracing, so the whole export is covered.
        warnings.simplefilter("ignore", DeprecationWarning)
        tf_fn = jax2tf.convert(
            apply_fn,
            with_gradient=True,
            polymorphic_shapes=poly,
            enable_xla=False,
            native_serialization=False,
        )
        _export(jax, tf, tf_fn, params, input_signatures, saved_model_dir)


def _export(jax, tf, tf_fn, params, input_signatures, saved_model_dir: str) -> None:
    """Save ``tf_fn`` with ``params`` as variables, so they become weights, not graph constants."""
    # Flatten with jax's own tree utilities so any pytree (dicts, FrozenDicts, dataclasses)
    # works; leaf order is jax's deterministic (sorted-key) order.
    leaves, treedef = jax.tree_util.tree_flatten(params)
    module = tf.Module()
    module.params = [tf.Variable(leaf, trainable=False, name=f"param_{i}") for i, leaf in enumerate(leaves)]

    def serve(*inputs):
        tree = jax.tree_util.tree_unflatten(treedef, list(module.params))
        return tf_fn(tree, *inputs)

    module.serve = tf.function(serve, input_signature=input_signatures, autograph=False, jit_compile=False)
    concrete = module.serve.get_concrete_function()
    tf.saved_model.save(module, saved_model_dir, signatures={"serving_default": concrete})


def convert_jax(
    apply_fn: Callable[..., Any],
    params: Any,
    *,
    input_signatures: Sequence[Any],
    model_dir: str,
    polymorphic_shapes: Sequence[str | None] | None = None,
    **converter_options: Any,
) -> str:
    """Convert ``apply_fn(params, *inputs)`` to a tfjs graph model in ``model_dir``.

    ``converter_options`` are ``ConversionOptions`` fields (``quantize_uint8='*'``,
    ``weight_shard_size_bytes=...``, ``overwrite=True``, ``metadata={...}``, ...).
    Returns ``model_dir``.
    """
    options = options_from_kwargs(converter_options)
    api.validate_options(options)
    with tempfile.TemporaryDirectory(prefix="tfjsconv-jax-") as tmp:
        saved_model_dir = os.path.join(tmp, "saved_model")
        jax_to_saved_model(
            apply_fn,
            params,
            input_signatures=input_signatures,
            saved_model_dir=saved_model_dir,
            polymorphic_shapes=polymorphic_shapes,
        )
        # The SavedModel comes from the caller's own function, built in this process: it is
        # not an untrusted file, and jax2tf's gradient functions hold XLA ops (XlaDotV2) the
        # untrusted-model scan would refuse although inference never runs them.
        trusted = dataclasses.replace(options, allow_unsafe_deserialization=True)
        scan_log = logging.getLogger("tfjsconv.graph.scan")
        level = scan_log.level
        scan_log.setLevel(logging.ERROR)  # no "--allow_unsafe_deserialization" warning
        try:
            return api.convert(saved_model_dir, model_dir, trusted)
        finally:
            scan_log.setLevel(level)
