"""`model_summary`: a consumer's own rule reading rules_tfjs's TfjsModelInfo provider."""

load("@rules_tfjs//rules:defs.bzl", "TfjsModelInfo")

def _model_summary_impl(ctx):
    entries = []
    for model in ctx.attr.models:
        info = model[TfjsModelInfo]
        entries.append(struct(
            label = model.label.name,
            model_dir = info.model_dir.short_path,
            model_json = info.model_json[len(info.model_dir.dirname) + 1:] if info.model_json else None,
            format = info.format,
            input_format = info.input_format,
            quantization = info.quantization,
            weight_shard_size_bytes = info.weight_shard_size_bytes,
        ))
    out = ctx.actions.declare_file(ctx.label.name + ".json")
    ctx.actions.write(out, json.encode_indent(entries, indent = "  ") + "\n")
    model_dirs = [m[TfjsModelInfo].model_dir for m in ctx.attr.models]
    return [DefaultInfo(files = depset([out] + model_dirs))]

model_summary = rule(
    implementation = _model_summary_impl,
    attrs = {
        "models": attr.label_list(
            providers = [TfjsModelInfo],
            doc = "tfjs_model / tfjs_quantized_model targets.",
        ),
    },
    doc = "Writes <name>.json: the TfjsModelInfo fields of `models`; builds their outputs.",
)
