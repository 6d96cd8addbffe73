"""Codegen: ``tfjs_model`` sources -> converted model files (resources), cached by Pants.

The converter runs as a sandboxed, cached ``Process``: the cache key is the argv
(built by ``pants_tfjs.argv``), the source digest, the pinned environment and the
converter's fingerprint (``--version`` output), so editing a field or a model file
re-converts, and nothing else does.
"""

from __future__ import annotations

import os

from pants.core.target_types import ResourceSourceField
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths, BinaryPathTest
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest, MergeDigests, Snapshot
from pants.engine.internals.selectors import Get
from pants.engine.process import Process, ProcessResult
from pants.engine.rules import collect_rules, rule
from pants.engine.target import (
    GeneratedSources,
    GenerateSourcesRequest,
    HydratedSources,
    HydrateSourcesRequest,
)
from pants.engine.unions import UnionRule
from pants.option.option_types import StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.logging import LogLevel

from pants_tfjs import argv
from pants_tfjs.target_types import TfjsModelSourcesField, spec_from_target


class TfjsSubsystem(Subsystem):
    options_scope = "tfjs"
    help = "Options for converting tfjs_model targets with tfjsconv."

    converter = StrOption(
        default="tensorflowjs_converter",
        help="Name (searched on `search_paths`) or absolute path of tfjsconv's converter CLI.",
    )
    search_paths = StrListOption(
        default=["<PATH>"],
        help="Directories to search for the converter; `<PATH>` is the environment's PATH.",
    )
    web_packager = StrOption(
        default="tfjs_web_package",
        help="Name (searched on `search_paths`) or absolute path of tfjsconv's web packaging CLI.",
    )


class GenerateTfjsModelRequest(GenerateSourcesRequest):
    input = TfjsModelSourcesField
    output = ResourceSourceField


def _search_path(paths, env_path: str):
    for entry in paths:
        if entry == "<PATH>":
            yield from (p for p in env_path.split(":") if p)
        else:
            yield entry


@rule(desc="Convert a model to TensorFlow.js", level=LogLevel.DEBUG)
async def generate_tfjs_model(request: GenerateTfjsModelRequest, tfjs: TfjsSubsystem) -> GeneratedSources:
    target = request.protocol_target
    spec = spec_from_target(target)
    spec_path = target.address.spec_path
    sources = await Get(HydratedSources, HydrateSourcesRequest(target[TfjsModelSourcesField]))
    model_input = argv.input_path(spec, spec_path, sources.snapshot.files)
    out_dir, out_path = argv.output_paths(spec, spec_path, target.address.target_name)
    args = argv.converter_args(spec, spec_path, model_input, out_path)

    env_vars = await Get(EnvironmentVars, EnvironmentVarsRequest(["PATH"]))
    path_request = _binary_request(tfjs.converter, tfjs.search_paths, env_vars, "--version")
    found = await Get(BinaryPaths, BinaryPathRequest, path_request)
    converter = found.first_path_or_raise(path_request, rationale="convert tfjs_model targets")

    env = dict(argv.PROCESS_ENV)
    env["TFJSCONV_FINGERPRINT"] = converter.fingerprint  # part of the cache key
    result = await Get(
        ProcessResult,
        Process(
            argv=(converter.path, *args),
            description=f"Converting {target.address} to {spec.output_format or 'tfjs'}",
            input_digest=sources.snapshot.digest,
            output_directories=(out_dir,),
            env=env,
            level=LogLevel.DEBUG,
        ),
    )
    web = argv.web_package_args(spec, spec_path, target.address.target_name)
    if web is None:
        return GeneratedSources(await Get(Snapshot, Digest, result.output_digest))
    # The web package: tfjs_web_package on the converted files, a second cached process.
    web_dir, web_args = web
    web_request = _binary_request(tfjs.web_packager, tfjs.search_paths, env_vars, "--help")
    web_found = await Get(BinaryPaths, BinaryPathRequest, web_request)
    packager = web_found.first_path_or_raise(web_request, rationale="package tfjs_model targets for the web")
    env["TFJSCONV_WEB_FINGERPRINT"] = packager.fingerprint
    packaged = await Get(
        ProcessResult,
        Process(
            argv=(packager.path, *web_args),
            description=f"Packaging {target.address} for the web as {spec.web_package_name}",
            input_digest=result.output_digest,
            output_directories=(web_dir,),
            env=env,
            level=LogLevel.DEBUG,
        ),
    )
    merged = await Get(Digest, MergeDigests([result.output_digest, packaged.output_digest]))
    return GeneratedSources(await Get(Snapshot, Digest, merged))


def _binary_request(binary: str, search_paths, env_vars: EnvironmentVars, test_arg: str) -> BinaryPathRequest:
    """Find ``binary`` by absolute path, or by name on ``search_paths`` (``<PATH>``: the env's)."""
    if os.path.isabs(binary):
        search, name = [os.path.dirname(binary)], os.path.basename(binary)
    else:
        search, name = list(_search_path(search_paths, env_vars.get("PATH", ""))), binary
    return BinaryPathRequest(binary_name=name, search_path=search, test=BinaryPathTest(args=[test_arg]))


def rules():
    return [*collect_rules(), UnionRule(GenerateSourcesRequest, GenerateTfjsModelRequest)]
