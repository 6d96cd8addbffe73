"""``tensorflowjs_wizard``: asks what ``tensorflowjs_converter`` needs, then runs it.

Four modules, so everything but the prompts is testable without a terminal:

* ``detect`` looks at the input (URL, ``.h5``, ``.keras`` zip, SavedModel, model.json,
  frozen ``.pb``) and reads what the questions offer (SavedModel tags and signatures,
  frozen-graph output candidates);
* ``prompts.ask`` puts only the applicable questions through ``questionary`` (PyInquirer, which
  the reference used, is unmaintained and pins an ancient prompt_toolkit);
* ``render`` (``build_argv`` / ``format_command`` / ``bazel_target``) turns the answers into the exact
  command line and the equivalent Bazel target, which are printed so the conversion can
  be repeated without the wizard;
* ``main`` is the entry point (``tensorflowjs_wizard``).
"""
