"""tfjsconv: a reproducible, build-system friendly TensorFlow.js model converter.

The import name is distinctive on purpose (the project is rules_tfjs); the CLI keeps
the reference converter's command names (``tensorflowjs_converter``,
``tensorflowjs_wizard``) so existing scripts keep working.
"""

__version__ = "0.1.0"

# The TensorFlow.js converter release whose output format this package reproduces.
COMPATIBLE_TFJS_VERSION = "4.22.0"
