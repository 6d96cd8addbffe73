"""Writing a frozen graph model: optimize, check, extract the weights, write
``model.json`` and the shards; ``write_streamed`` adds the retry of a streamed write."""

from __future__ import annotations

import gc
import logging
import os
import shutil
from collections.abc import Callable
from typing import Any

from tfjsconv.graph import (
    checkpoint_source,
    executability,
    extract,
    lazy_weights,
    optimize,
    streaming,
    weight_stash,
)
from tfjsconv.graph.freeze import FrozenModel
from tfjsconv.graph.topology import message_to_dict
from tfjsconv.options import ConversionOptions

log = logging.getLogger(__name__)


def write_graph_model(
    frozen: FrozenModel,
    out_dir: str,
    options: ConversionOptions,
    lazy: lazy_weights.LazyWeights | None = None,
    min_bytes: int = weight_stash.DEFAULT_MIN_BYTES,
) -> None:
    """Optimize, extract weights, write shards and model.json (single weight group).

    ``lazy``: stand-ins of weights still in the checkpoint; the writer reads each one
    when it writes it.  ``min_bytes``: the weight stash's threshold (tests lower it).
    """
    from tfjsconv import model_json, weights

    log.info("optimizing the graph (%d nodes)", len(frozen.graph_def.node))
    graph_def = optimize.optimize_graph(
        frozen.graph_def,
        frozen.output_nodes,
        skip_op_check=options.skip_op_check,
        strip_debug_ops=options.strip_debug_ops,
        experiments=options.experiments,
        extra_graphs=[frozen.initializer_graph_def] if frozen.initializer_graph_def is not None else [],
        lazy=lazy,
        stash_min_bytes=min_bytes,
    )
    frozen.graph_def = None
    init_graph = frozen.initializer_graph_def
    # Refuse here what tfjs would load and then fail to execute.
    executability.check_model(graph_def, frozen.signature, init_graph, frozen.initializer_signature)
    values = streaming.extract_weights(graph_def, init_graph, lazy, extract.extract_weights)
    if lazy is not None:
        log.info(
            "%d weights stay in the checkpoint until they are written", len(streaming.lazy_names(values))
        )
    log.info("writing %d weights and model.json (%d nodes)", len(values), len(graph_def.node))
    manifest = weights.write_weights(
        [values],
        out_dir,
        shard_size_bytes=options.weight_shard_size_bytes,
        quantization=options.quantization_specs or None,
    )
    del values
    if lazy is not None:
        lazy.verify()  # before model.json: a wrong optimistic answer means converting again
    model: dict[str, Any] = {
        "format": "graph-model",
        "generatedBy": frozen.generated_by,
        "convertedBy": model_json.converted_by(),
        "signature": frozen.signature,
        "modelTopology": message_to_dict(graph_def),
    }
    metadata = dict(options.metadata)
    if options.use_structured_outputs_names and frozen.structured_output_keys:
        metadata["structuredOutputKeys"] = list(frozen.structured_output_keys)
    if metadata:
        model["userDefinedMetadata"] = metadata
    if init_graph is not None and len(init_graph.node):
        model["modelInitializer"] = message_to_dict(init_graph)
        if frozen.initializer_signature:
            model["initializerSignature"] = frozen.initializer_signature
    model["weightsManifest"] = manifest
    model_json.write_model_json(out_dir, model)


def write_streamed(
    attempt: Callable[[bool], tuple[FrozenModel, lazy_weights.LazyWeights]],
    out_dir: str,
    options: ConversionOptions,
    min_bytes: int,
) -> bool:
    """Freeze (``attempt(optimistic)``) and write with weights streamed; False when the
    model cannot stream (the caller loads it whole).  A wrong optimistic answer about a
    weight's values (``StreamingRetry``) converts again with values read first."""
    for optimistic in (True, False):
        try:
            frozen, lazy = attempt(optimistic)
        except checkpoint_source.StreamingUnsupported as e:
            log.info("streaming the weights is not possible (%s): loading them all", e)
            return False
        try:
            write_graph_model(frozen, out_dir, options, lazy, min_bytes)
            return True
        except lazy_weights.StreamingRetry as e:
            log.info("%s: converting again, reading the large weights' values first", e)
            _empty(out_dir)
            del frozen, lazy
            gc.collect()
    return False


def _empty(out_dir: str) -> None:
    """Remove what a conversion attempt wrote into its (private, staging) output dir."""
    for entry in os.listdir(out_dir):
        target = os.path.join(out_dir, entry)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        else:
            os.remove(target)
