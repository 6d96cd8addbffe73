"""Plan and write the migration of one legacy model directory.

Planning is pure (it reads SRC, returns data); writing goes through
``tfjsconv.fsutil.staged_output`` so DEST appears complete or not at all. Weight
bytes are copied unchanged: 0.x quantization metadata only lacks
``original_dtype``, which is the weight's own ``dtype`` in 0.x.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass

from tfjsconv import fsutil
from tfjsconv.errors import ConversionError
from tfjsconv.model_json import MODEL_JSON, converted_by, dumps
from tfjsconv_pb2json import legacy, topology


@dataclass(frozen=True)
class MigrationPlan:
    src: str
    model_json: dict
    renames: tuple[tuple[str, str], ...]  # (legacy shard path, new shard path)
    gained_original_dtype: tuple[tuple[str, str], ...]  # (weight name, original_dtype)
    extra_files: tuple[str, ...]

    def describe(self, dest: str, include_extras: bool = True) -> list[str]:
        """Human-readable lines saying what ``write_migration`` would do."""
        lines = [f"migrate {self.src} -> {dest}"]
        lines.append(f"  write {MODEL_JSON} (from {legacy.PB_NAME} + {legacy.MANIFEST_NAME})")
        for old, new in self.renames:
            lines.append(f"  rename shard {old} -> {new}")
        for name, dtype in self.gained_original_dtype:
            lines.append(f"  weight {name}: quantization gains original_dtype {dtype}")
        for name in self.extra_files:
            lines.append(f"  {'copy' if include_extras else 'skip'} {name}")
        return lines


def _migrate_manifest(manifest: list[dict]) -> tuple[list, list, list]:
    new_manifest = copy.deepcopy(manifest)
    renames = []
    gained = []
    for group in new_manifest:
        new_paths = []
        for path in group["paths"]:
            new = legacy.new_shard_name(path)
            renames.append((path, new))
            new_paths.append(new)
        group["paths"] = new_paths
        weights = []
        for weight in group["weights"]:
            quant = weight.get("quantization")
            if quant is not None and "original_dtype" not in quant:
                quant = dict(quant)
                quant["original_dtype"] = weight["dtype"]
                gained.append((weight["name"], weight["dtype"]))
            # The current key order: name, shape, dtype, quantization.
            entry = {"name": weight["name"], "shape": weight["shape"], "dtype": weight["dtype"]}
            if quant is not None:
                order = ("dtype", "min", "scale", "original_dtype")
                entry["quantization"] = {
                    **{k: quant[k] for k in order if k in quant},
                    **{k: quant[k] for k in sorted(quant) if k not in order},
                }
            weights.append(entry)
        group["weights"] = weights
    return new_manifest, renames, gained


def plan_migration(src: str) -> MigrationPlan:
    """Validate ``src`` and compute everything the migration will write."""
    model = legacy.read_legacy_model(src)
    manifest, renames, gained = _migrate_manifest(model.manifest)
    outputs = {MODEL_JSON}
    for _old, new in renames:
        if new in outputs:
            raise ConversionError(f"migrated shard name {new!r} collides with another output")
        outputs.add(new)
    clash = sorted({new for _, new in renames} & set(model.extra_files))
    if clash:
        raise ConversionError(
            f"{src} already contains {', '.join(clash)}, which the migrated shards would replace"
        )
    model_json = {
        "format": "graph-model",
        "convertedBy": converted_by(),
        "modelTopology": topology.graph_def_to_json(model.graph_def),
        "weightsManifest": manifest,
    }
    return MigrationPlan(
        src=src,
        model_json=model_json,
        renames=tuple(renames),
        gained_original_dtype=tuple(gained),
        extra_files=model.extra_files,
    )


def check_dest(src: str, dest: str, *, overwrite: bool = False) -> None:
    """Fail early (and in --dry-run) the way the real write would fail."""
    fsutil.check_not_overlapping(src, dest)
    if os.path.exists(dest) and not overwrite:
        if not os.path.isdir(dest):
            raise ConversionError(f"output path exists and is not a directory: {dest}")
        if os.listdir(dest):
            raise ConversionError(f"output directory is not empty: {dest} (pass --overwrite to replace it)")


def write_migration(
    plan: MigrationPlan, dest: str, *, overwrite: bool = False, include_extras: bool = True
) -> None:
    """Write the migrated model to ``dest`` atomically; ``plan.src`` is only read."""
    extras = plan.extra_files if include_extras else ()
    if include_extras and MODEL_JSON in extras:
        raise ConversionError(
            f"{plan.src} already contains a {MODEL_JSON}; it is not a pure legacy model "
            "(pass --no_extra_files to ignore other files)"
        )
    fsutil.check_not_overlapping(plan.src, dest)
    with fsutil.staged_output(dest, kind="dir", overwrite=overwrite) as staging:
        for old, new in plan.renames:
            target = os.path.join(staging, *new.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(plan.src, *old.split("/")), target)
        for name in extras:
            shutil.copyfile(os.path.join(plan.src, name), os.path.join(staging, name))
        with open(os.path.join(staging, MODEL_JSON), "wb") as f:
            f.write(dumps(plan.model_json))
