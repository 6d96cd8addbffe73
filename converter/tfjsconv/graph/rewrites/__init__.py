"""tfjs-specific GraphDef rewrites, applied by ``tfjsconv.graph.optimize`` in this order:

``inline_calls`` (calls freezing kept) -> ``exact_op_rewrites`` (ops tfjs lacks) -> op check ->
``grouped_convolutions`` -> grappler pass 1 -> ``fold_batch_norms`` -> ``normalize_bias_add`` -> (CPU device,
grappler remap) -> ``fuse_prelu`` -> ``fuse_depthwise_conv2d`` ->
``fuse_prelu_into_fused_ops`` -> ``switch_control_inputs`` (lowered control flow).

Each (but ``inline_calls``, ``exact_op_rewrites`` and ``grouped_convolutions``, which edit the frozen graph in place) is a pure
``GraphDef -> GraphDef`` function: the input is never modified, the
result is a new GraphDef (or the input itself when nothing applies) whose node order follows the input's (replacement nodes take
the position of the node they replace), so equal inputs give byte-equal outputs.
Each accepts an optional ``keep`` iterable of fetch node names that must survive.
"""

from tfjsconv.graph.rewrites.exact_op_rewrites import EXACT_REWRITES, exact_op_rewrites
from tfjsconv.graph.rewrites.fold_batch_norms import fold_batch_norms
from tfjsconv.graph.rewrites.fuse_depthwise_conv2d import fuse_depthwise_conv2d
from tfjsconv.graph.rewrites.fuse_prelu import fuse_prelu
from tfjsconv.graph.rewrites.fuse_prelu_into_fused_ops import fuse_prelu_into_fused_ops
from tfjsconv.graph.rewrites.grouped_convolutions import grouped_convolutions
from tfjsconv.graph.rewrites.inline_calls import inline_calls
from tfjsconv.graph.rewrites.normalize_bias_add import normalize_bias_add
from tfjsconv.graph.rewrites.switch_control_inputs import switch_control_inputs

__all__ = [
    "EXACT_REWRITES",
    "exact_op_rewrites",
    "fold_batch_norms",
    "fuse_depthwise_conv2d",
    "fuse_prelu",
    "fuse_prelu_into_fused_ops",
    "grouped_convolutions",
    "inline_calls",
    "normalize_bias_add",
    "switch_control_inputs",
]
