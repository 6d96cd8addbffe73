"""Migrate legacy TensorFlow.js 0.x graph models to the current ``model.json`` format.

0.x converters wrote ``tensorflowjs_model.pb`` + ``weights_manifest.json`` + shards
without ``.bin``; tfjs 1.x and later load only ``model.json``. The migration keeps
every weight byte as it is (no re-quantization), so a migrated model computes
exactly what the legacy one did.
"""

from tfjsconv_pb2json.cli import main
from tfjsconv_pb2json.legacy import LegacyModel, read_legacy_model
from tfjsconv_pb2json.migrate import MigrationPlan, plan_migration, write_migration

__all__ = [
    "LegacyModel",
    "MigrationPlan",
    "main",
    "plan_migration",
    "read_legacy_model",
    "write_migration",
]
