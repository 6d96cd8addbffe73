"""Writing and reading TensorFlow.js binary weight shards and the ``weightsManifest``.

Format (what tfjs-core ``io.decodeWeights`` expects, and what the reference writes):

* every group's weights are concatenated in order, then cut into ``shard_size_bytes``
  chunks named ``group{g}-shard{i}of{n}.bin`` (1-based); a weight may straddle shards and
  an empty group gets ``paths: []``;
* numeric values are little-endian, C order (explicit ``<`` dtypes: the bytes must not
  depend on the machine); bool is one byte; complex64 is interleaved (re, im);
* a string element is a uint32 little-endian byte length followed by its UTF-8 bytes.

The writer streams one weight at a time into the shard files, so converting a model never
needs a second in-memory copy of all its weights.  A weight may also be a ``LazyArray``
(``shape``, ``dtype``, ``size`` and ``read()``): it is read when it is written and
dropped after, so only one such weight is in memory at a time.

The implementation lives in ``weight_writer`` and ``weight_reader``; this module is the
documented entry point (``write_weights`` / ``read_weights``).
"""

from __future__ import annotations

from tfjsconv.weight_format import LazyArray
from tfjsconv.weight_reader import ShardWeight, checked_groups, read_weights, read_weights_lazily
from tfjsconv.weight_writer import write_weights

__all__ = [
    "LazyArray",
    "ShardWeight",
    "checked_groups",
    "read_weights",
    "read_weights_lazily",
    "write_weights",
]
