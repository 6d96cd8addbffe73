"""Quantization chosen by measured accuracy: per-weight dtypes that fit an error budget.

``apply.quantize_to_budget`` is the entry point (``api.convert`` calls it on the staged
float32 model); ``search`` holds the algorithm, ``calibration`` the inputs it measures
on, ``evaluate`` the TensorFlow runs, ``report``/``svg`` what it writes.
"""
