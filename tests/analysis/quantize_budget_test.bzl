"""Analysis test of tfjs_quantized_model(max_error = ...): the budget flags, the report
directory as a second output and the `quantization_report` output group."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("//rules:defs.bzl", "TfjsModelInfo")

def _budget_action_test_impl(ctx):
    env = analysistest.begin(ctx)
    target = analysistest.target_under_test(env)
    actions = [a for a in analysistest.target_actions(env) if a.mnemonic == "TfjsConvert"]
    asserts.equals(env, 1, len(actions), "one TfjsConvert action")
    if not actions:
        return analysistest.end(env)
    action = actions[0]
    info = target[TfjsModelInfo]
    report = target[OutputGroupInfo].quantization_report.to_list()
    asserts.equals(env, 1, len(report), "one report directory")
    asserts.equals(env, ctx.attr.report_basename, report[0].basename)
    asserts.true(env, report[0].is_directory, "the report is a tree artifact")
    asserts.equals(env, [info.model_dir, report[0]], action.outputs.to_list())
    for flag in ctx.attr.flags:
        asserts.true(env, flag in action.argv, "%s not in %s" % (flag, action.argv))
    asserts.true(env, "--quantization_report_dir=" + report[0].path in action.argv, "report flag")
    inputs = [f.short_path for f in action.inputs.to_list()]
    for path in ctx.attr.inputs:
        asserts.true(env, path in inputs, "%s is not an input" % path)
    return analysistest.end(env)

budget_action_test = analysistest.make(
    _budget_action_test_impl,
    attrs = {
        "flags": attr.string_list(doc = "Arguments the action must have."),
        "inputs": attr.string_list(doc = "Short paths that must be among the action's inputs."),
        "report_basename": attr.string(doc = "Expected name of the report directory."),
    },
)
