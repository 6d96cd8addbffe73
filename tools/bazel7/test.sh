#!/usr/bin/env bash
# The Bazel 7.7.1 half of `./dev test`, run inside the forky root by tools/bazel7/enter:
#   tools/bazel7/enter tools/bazel7/test.sh
# bzlmod only (--noenable_workspace) with --incompatible_python_disallow_native_rules,
# from tools/bazel7/enter's bazelrc. Builds //examples/... (cold, then no-op: both
# timed), runs `bazel test //...`, then builds the consumer module tests/consumer twice:
# through a file:// registry and through local_path_override. The byte comparison with
# Bazel 4.2.3's outputs runs afterwards on the host (tools/bazel7/compare_outputs.py).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${BAZEL7_CACHE:?run through tools/bazel7/enter}"
cd "$REPO"
# Convenience symlinks under .cache/bazel7/ (bazel-bin...), not next to Bazel 4's.
LINKS=(--symlink_prefix=.cache/bazel7/bazel-)

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }
log() { printf '\n== bazel 7: %s\n' "$*" >&2; }

echo "Bazel $(cat /usr/share/bazel/build-label.txt 2>/dev/null)" >&2

# This repository's .bazelrc without --experimental_worker_allow_json_protocol (Bazel 4
# needs it for JSON workers; Bazel 7 rejects it as unknown) and without the class-data
# archive (recorded by the host's Bazel 4.2.3 on the host's JDK; this Bazel runs its own):
# read through enter's bazelrc (try-import) with the workspace rc itself switched off.
grep -v -e '--experimental_worker_allow_json_protocol' -e '/bazel-jvm/' .bazelrc >"$CACHE/workspace.bazelrc"
bazel() { command bazel --noworkspace_rc "$@"; }

log "bazel build //examples/..."
t0=$(now)
bazel build "${LINKS[@]}" //examples/...
t1=$(now)
log "bazel build //examples/... (no-op)"
bazel build "${LINKS[@]}" //examples/...
t2=$(now)

log "bazel test //..."
bazel test "${LINKS[@]}" //... --test_output=errors
t3=$(now)

# The consumer: a copy outside the source tree (a workspace of its own), a registry
# that serves this checkout as rules_tfjs 0.1.0, then the same with local_path_override.
log "consumer module (tests/consumer) via --registry=file://"
unset -f bazel
rm -f "$CACHE/workspace.bazelrc"  # the consumer reads its own .bazelrc
REG="$CACHE/registry"
rm -rf "$REG" "$CACHE/consumer"
mkdir -p "$REG/modules/rules_tfjs/0.1.0"
echo '{}' >"$REG/bazel_registry.json"
printf '{"homepage": "", "maintainers": [], "versions": ["0.1.0"], "yanked_versions": {}}\n' \
  >"$REG/modules/rules_tfjs/metadata.json"
cp MODULE.bazel "$REG/modules/rules_tfjs/0.1.0/MODULE.bazel"
printf '{"type": "local_path", "path": "%s"}\n' "$REPO" >"$REG/modules/rules_tfjs/0.1.0/source.json"
cp -r tests/consumer "$CACHE/consumer"
(cd "$CACHE/consumer" && bazel build --registry="file://$REG" //:summary)
cp "$CACHE/consumer/bazel-bin/summary.json" "$CACHE/consumer-registry-summary.json"
t4=$(now)

log "consumer module (tests/consumer) via local_path_override"
printf '\nlocal_path_override(\n    module_name = "rules_tfjs",\n    path = "%s",\n)\n' "$REPO" \
  >>"$CACHE/consumer/MODULE.bazel"
# An empty registry: any module left without an override would fail, not download.
mkdir -p "$CACHE/empty-registry" && echo '{}' >"$CACHE/empty-registry/bazel_registry.json"
(cd "$CACHE/consumer" && bazel build --registry="file://$CACHE/empty-registry" //:summary)
t5=$(now)

printf 'bazel7: build //examples/... first (new server; cold if the output base is new) %ss, no-op %ss; test //... %ss; consumer registry %ss, override %ss\n' \
  "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" "$(secs "$t2" "$t3")" "$(secs "$t3" "$t4")" "$(secs "$t4" "$t5")" \
  | tee "$CACHE/times.txt" >&2
