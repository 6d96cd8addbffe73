"""Keras <-> TensorFlow.js layers-model conversions.

The h5/.keras -> layers path uses only h5py and numpy (no TensorFlow import): it is
the common build step and importing TensorFlow would cost seconds and ~650 MB.
Only the paths that must *produce* or *load* a Keras model import tf_keras, lazily.
"""
