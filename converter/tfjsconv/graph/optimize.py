"""The reference's graph optimization: grappler, then the tfjs-specific rewrites.

Order (as the reference, plus an exact rewrite of ops tfjs lacks first): op check;
grappler [debug_stripper] + 2x(pruning, constfold, arithmetic, dependency); batch-norm
folding; BiasAdd normalization; CPU device on Conv2D/MatMul so the remapper fuses them;
grappler remap pass (``_FusedConv2D``, ``_FusedMatMul``); drop
``unused_control_flow_input`` placeholders; PReLU and depthwise fusions; inert control
inputs (and the dead weights only they kept) dropped; control inputs from Switches
re-expressed for tfjs; op check again.  Each grappler run keeps large opaque weights
out of grappler (``weight_stash``), after folding ``Const -> Identity`` reads once up
front and, for streamed weights, doing grappler's ``conv * constant`` fold on the
stream (``stream_folds``).
"""

from __future__ import annotations

from collections.abc import Sequence

from tfjsconv.graph import (
    grappler_child,
    inert_control,
    lazy_weights,
    rewrites,
    stream_folds,
    streaming,
    weight_stash,
)
from tfjsconv.graph import ops as op_list

_CPU = "/device:CPU:0"
_PASS1 = ["pruning", "constfold", "arithmetic", "dependency"] * 2
_PASS2 = ["remap", "constfold", "arithmetic", "dependency"]


def run_grappler(
    graph_def,
    fetch_nodes: Sequence[str],
    optimizers: list[str],
    experiments: bool = False,
    stash_min_bytes: int | None = weight_stash.DEFAULT_MIN_BYTES,
    lazy: lazy_weights.LazyWeights | None = None,
):
    """One grappler run that keeps ``fetch_nodes``; returns the new GraphDef.

    The input GraphDef is consumed (must not be used afterwards).  Large weights that
    grappler cannot use are kept out of it (``weight_stash``) unless
    ``stash_min_bytes`` is None; streamed weights (``lazy``) it could use are read in.
    """
    from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
    from tensorflow.python.grappler import tf_optimizer

    if stash_min_bytes is None:
        if lazy is not None:
            lazy.materialize_all(graph_def)
        stashed = None
    else:
        stashed = weight_stash.stash(graph_def, fetch_nodes, stash_min_bytes, lazy)
    streaming.check_graph_size(graph_def, "graph handed to grappler")
    meta = meta_graph_pb2.MetaGraphDef()
    meta.graph_def.MergeFrom(graph_def)
    graph_def.Clear()
    meta.collection_def["train_op"].node_list.value.extend(fetch_nodes)
    signature = meta.signature_def["not_used_key"]
    for name in fetch_nodes:
        signature.outputs[name].name = name if ":" in name else name + ":0"
    config = config_pb2.ConfigProto()
    rewriter = config.graph_options.rewrite_options
    rewriter.optimizers.extend(optimizers)
    if experiments:
        rewriter.experimental_disable_compressed_tensor_optimization = True
    if grappler_child.onednn_enabled():
        optimized = grappler_child.optimize_in_child(config, meta)
    else:
        optimized = tf_optimizer.OptimizeGraph(config, meta, cluster=grappler_child.cluster())
    if stashed is not None:
        weight_stash.restore(optimized, stashed)
    return optimized


def _set_cpu_device(graph_def) -> None:
    for node in graph_def.node:
        if node.op in ("Conv2D", "MatMul"):
            node.device = _CPU


def _remove_unused_control_flow_inputs(graph_def):
    """Delete grappler's ``unused_control_flow_input`` placeholders, in place (a new
    GraphDef would copy every weight)."""
    for position in reversed(range(len(graph_def.node))):
        node = graph_def.node[position]
        if node.op == "Placeholder" and node.name.startswith("unused_control_flow_input"):
            del graph_def.node[position]
    return graph_def


def optimize_graph(
    graph_def,
    fetch_nodes: Sequence[str],
    *,
    skip_op_check: bool = False,
    strip_debug_ops: bool = True,
    experiments: bool = False,
    extra_graphs: Sequence = (),
    stash_min_bytes: int | None = weight_stash.DEFAULT_MIN_BYTES,
    lazy: lazy_weights.LazyWeights | None = None,
):
    """Optimize ``graph_def`` (consumed) for tfjs; ``extra_graphs`` are op-checked too.

    ``stash_min_bytes=None`` gives grappler every weight (tests compare both ways).
    ``lazy``: the stand-ins of streamed weights in ``graph_def`` (``graph.streaming``).
    """
    fetch_nodes = [n.split(":")[0] for n in fetch_nodes]
    if rewrites.inline_calls(graph_def):  # in place, on the protos: nothing runs before the op check
        # TF orders a stateful call before the function returns; inlined, the control
        # edges are inert and would block the fusions below.
        inert_control.drop_inert_control_inputs(graph_def, fetch_nodes)
    rewrites.exact_op_rewrites(graph_def)  # in place: the frozen graph holds every weight
    if not skip_op_check:
        op_list.check_ops([graph_def, *extra_graphs], strip_debug_ops, "before optimization")
    rewrites.grouped_convolutions(graph_def)  # in place; infers shapes, so after the op check
    weight_stash.fold_const_identities(graph_def, fetch_nodes, lazy)
    if stash_min_bytes is not None:
        stream_folds.push_muls_into_streamed_convs(graph_def, fetch_nodes, lazy)
    first = (["debug_stripper"] if strip_debug_ops else []) + _PASS1
    graph_def = run_grappler(graph_def, fetch_nodes, first, experiments, stash_min_bytes, lazy)
    # The rewrites never fold or fuse away a node that is fetched as an output.
    graph_def = rewrites.fold_batch_norms(graph_def, keep=fetch_nodes, lazy=lazy)
    graph_def = rewrites.normalize_bias_add(graph_def, keep=fetch_nodes)
    _set_cpu_device(graph_def)
    graph_def = run_grappler(graph_def, fetch_nodes, _PASS2, experiments, stash_min_bytes, lazy)
    graph_def = _remove_unused_control_flow_inputs(graph_def)
    graph_def = rewrites.fuse_prelu(graph_def, keep=fetch_nodes)
    graph_def = rewrites.fuse_depthwise_conv2d(graph_def, keep=fetch_nodes)
    graph_def = rewrites.fuse_prelu_into_fused_ops(graph_def, keep=fetch_nodes)
    inert_control.drop_inert_control_inputs(graph_def, fetch_nodes)  # and the weights only they kept
    graph_def = rewrites.switch_control_inputs(graph_def, keep=fetch_nodes)
    if not skip_op_check:
        op_list.check_ops([graph_def, *extra_graphs], strip_debug_ops, "after optimization")
    # The reference always ends with a (possibly empty) library: keep that shape.
    graph_def.library.SetInParent()
    return graph_def
