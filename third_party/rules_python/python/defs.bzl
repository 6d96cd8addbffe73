"""The @rules_python//python:defs.bzl API of rules_python 0.22.1, forwarding to Bazel's
native Python rules (offline stand-in for Bazel 4.2.3, which has them built in)."""

load("@bazel_tools//tools/python:toolchain.bzl", _py_runtime_pair = "py_runtime_pair")

py_runtime_pair = _py_runtime_pair

def py_binary(**attrs):
    native.py_binary(**attrs)  # buildifier: disable=native-py

def py_library(**attrs):
    native.py_library(**attrs)  # buildifier: disable=native-py

def py_test(**attrs):
    native.py_test(**attrs)  # buildifier: disable=native-py

def py_runtime(**attrs):
    native.py_runtime(**attrs)  # buildifier: disable=native-py
