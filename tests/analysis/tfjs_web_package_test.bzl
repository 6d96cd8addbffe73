"""Analysis tests of tfjs_web_package: its TfjsWebPackage action's command line, inputs
and environment (its fail() is covered by tfjs_model_test.bzl's failure_test)."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("//rules/private:formats.bzl", "ACTION_ENV")  # buildifier: disable=bzl-visibility

def _web_package_action_test_impl(ctx):
    env = analysistest.begin(ctx)
    target = analysistest.target_under_test(env)
    actions = [a for a in analysistest.target_actions(env) if a.mnemonic == "TfjsWebPackage"]
    asserts.equals(env, 1, len(actions), "one TfjsWebPackage action")
    if not actions:
        return analysistest.end(env)
    action = actions[0]
    (out,) = target[DefaultInfo].files.to_list()

    # The converter's hermetic runtime: loader, --library-path DIR, interpreter, -s, -S,
    # tool, --sys_path=... (the converter sources, the site-packages), then the entry.
    argv = action.argv
    asserts.true(env, argv[0].endswith("/ld-linux-x86-64.so.2"), "loader: " + argv[0])
    asserts.equals(env, ["-s", "-S", "-B", "rules/private/tfjs_convert_tool.py"], argv[4:8])
    rest = [a for a in argv[8:] if not a.startswith("--sys_path=")]
    model_dir = ctx.attr.model_dir.replace("$BIN", out.root.path)
    expected = ["--entry=web_package"] + ctx.attr.argv + [model_dir, out.path]
    asserts.equals(env, expected, rest)
    asserts.equals(env, [model_dir], [f.path for f in action.inputs.to_list() if f.path == model_dir])
    action_env = dict(action.env)
    action_env.pop("PYTHONHOME", "")
    asserts.equals(env, ACTION_ENV, action_env)
    asserts.equals(env, out.basename, target.label.name)
    return analysistest.end(env)

web_package_action_test = analysistest.make(
    _web_package_action_test_impl,
    attrs = {
        "argv": attr.string_list(doc = "Expected arguments between the entry and the paths."),
        "model_dir": attr.string(doc = "The model's tree artifact; $BIN is the bin directory."),
    },
)
