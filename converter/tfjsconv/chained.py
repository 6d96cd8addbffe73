"""Conversions that chain two others; the format table (``formats.py``) points here.

A chain imports both converters it joins, and neither converter imports the other, so
the layers and graph packages stay independent of each other.
"""

from __future__ import annotations

import os
import tempfile

from tfjsconv.graph.keras_graph import keras_to_graph
from tfjsconv.graph.weight_stash import DEFAULT_MIN_BYTES
from tfjsconv.layers import convert as layers_convert
from tfjsconv.options import ConversionOptions


def layers_to_graph(
    input_path: str,
    staging_dir: str,
    options: ConversionOptions,
    streaming_enabled: bool = True,
    min_bytes: int = DEFAULT_MIN_BYTES,
) -> None:
    """tfjs_layers_model -> Keras h5 (tfjs.layers) -> tfjs_graph_model; the h5 (written
    one weight at a time) streams its weights like ``keras_to_graph``."""
    with tempfile.TemporaryDirectory(prefix="tfjsconv-") as tmp:
        h5 = os.path.join(tmp, "model.h5")
        layers_convert.layers_to_keras_h5(
            input_path,
            h5,
            options.replace(
                output_format="keras", quantize_float16=None, quantize_uint8=None, quantize_uint16=None
            ),
        )
        keras_to_graph(h5, staging_dir, options, streaming_enabled, min_bytes)
