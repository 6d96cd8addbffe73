"""Pants plugin entry point: ``backend_packages = ["pants_tfjs"]``."""

from pants_tfjs import rules as tfjs_rules
from pants_tfjs.target_types import TfjsModelTarget


def target_types():
    return [TfjsModelTarget]


def rules():
    return tfjs_rules.rules()
