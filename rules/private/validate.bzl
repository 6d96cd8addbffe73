"""The converter's option check (tfjsconv.formats.problem) at analysis time.

The tables come from formats.bzl, generated from tfjsconv/formats.py; this is the same
algorithm, word for word the same messages. tests/python/test_formats_drift.py asks
this code (through `bazel build --nobuild`), the CLI, the Pants plugin and the
setuptools hook for a verdict on every (input, output) pair x option and requires
the same answer.
"""

load(
    ":formats.bzl",
    "CHECKS",
    "DEFAULT_OUTPUT_FORMAT",
    "INPUT_FORMATS",
    "OPTION_DEFAULTS",
    "OUTPUT_FORMATS",
    "SUPPORTED_PAIRS",
)

def _either(formats):
    items = sorted(formats)
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]

def _is_set(name, value):
    """Whether `value` differs from the option's default; None, "" and [] mean unset."""
    if value == None:
        return False
    if type(value) in ("string", "list", "tuple") and len(value) == 0:
        return False
    default = OPTION_DEFAULTS[name]
    if type(value) in ("list", "tuple") and type(default) in ("list", "tuple"):
        return list(value) != list(default)
    return value != default

def _output_format_problem(input_format, output_format):
    """(error message or None, resolved output format)."""
    if input_format not in INPUT_FORMATS:
        return ('unknown input_format "%s"; choose one of: %s' % (input_format, ", ".join(INPUT_FORMATS)), "")
    out = output_format or DEFAULT_OUTPUT_FORMAT[input_format]
    if out not in OUTPUT_FORMATS:
        return ('unknown output_format "%s"; choose one of: %s' % (out, ", ".join(OUTPUT_FORMATS)), out)
    if (input_format, out) not in SUPPORTED_PAIRS:
        writes = ", ".join([o for (i, o) in SUPPORTED_PAIRS if i == input_format])
        return ("unsupported input_format/output_format pair: %s -> %s (from %s the converter writes: %s)" % (
            input_format,
            out,
            input_format,
            writes,
        ), out)
    return (None, out)

def problem(input_format, output_format, values):
    """The first reason the converter refuses these options, or None.

    Args:
      input_format: the input format.
      output_format: the output format; "" or None for the converter's default.
      values: dict option name -> value; missing names take their defaults.

    Returns:
      The converter's error message, or None when it accepts the options.
    """
    message, out = _output_format_problem(input_format, output_format)
    if message:
        return message
    for name, kind, formats in CHECKS:
        value = values.get(name)
        if kind == "positive":
            if value != None and value <= 0:
                return "%s must be a positive integer, got %d" % (name, value)
        elif kind == "required_for_inputs":
            if input_format in formats and not _is_set(name, value):
                return '%s is required for input_format "%s"' % (name, input_format)
        elif kind == "inputs":
            if _is_set(name, value) and input_format not in formats:
                return "%s applies only to the %s input format, not %s" % (name, _either(formats), input_format)
        elif kind == "outputs":
            if _is_set(name, value) and out not in formats:
                return "%s applies only to the %s output format, not %s" % (name, _either(formats), out)
        else:
            fail("unknown check kind %r in formats.bzl" % kind)
    return None
