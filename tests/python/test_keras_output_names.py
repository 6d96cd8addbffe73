"""Keras 3 gives every output of a multi-output layer the layer's name; the graph
model's signature must keep them all (the corpus runs such models in tfjs:
rnn/*_return_state|k3:graph)."""

from tfjsconv.graph.keras_graph import _unique_names


def test_repeated_names_get_suffixes_in_order():
    assert _unique_names(["rnn", "rnn", "rnn"]) == ["rnn", "rnn_1", "rnn_2"]


def test_a_suffix_never_takes_another_outputs_name():
    assert _unique_names(["rnn", "rnn", "rnn_1"]) == ["rnn", "rnn_2", "rnn_1"]


def test_unique_names_are_unchanged():
    assert _unique_names(["dense", "dense_1", "head"]) == ["dense", "dense_1", "head"]
