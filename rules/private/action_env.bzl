"""The pinned environment of every rules_tfjs action; defined in tfjsconv/formats.py.

Kept for loads written before formats.bzl held it: load ACTION_ENV from formats.bzl.
"""

load(":formats.bzl", _ACTION_ENV = "ACTION_ENV")

ACTION_ENV = _ACTION_ENV
