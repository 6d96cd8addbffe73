#!/usr/bin/env bash
# Create (once) a separate venv holding the reference converter (pip tensorflowjs 4.22.0)
# for side-by-side benchmarks, and print the path of its tensorflowjs_converter.
#
# It is never a project dependency: it lives in .cache/reference-venv, outside the lock files.
# The recipe is the one that works with TF 2.21 (see docs in the shared reference notes):
#   tensorflow-cpu==2.21.0, then --no-deps tensorflowjs==4.22.0 tf-keras==2.21.0
#   tensorflow-hub, then jax/jaxlib (imported at start-up), the KerasHub pins of the
#   reach corpus (requirements/kerashub.lock, --no-deps), plus an empty
#   tensorflow_decision_forests package (the real one fails to load on TF 2.21 but the
#   reference imports it unconditionally).
# Progress goes to stderr; stdout is only the converter path, so callers can do
#   CONVERTER=$(bench/setup_reference.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TFJSCONV_REFERENCE_VENV:-$ROOT/.cache/reference-venv}"
PYTHON="${PYTHON:-/usr/bin/python3}"
RECIPE="tensorflow-cpu==2.21.0 | --no-deps tensorflowjs==4.22.0 tf-keras==2.21.0 tensorflow-hub | jax jaxlib | --no-deps kerashub.lock $(sha256sum "$ROOT/requirements/kerashub.lock" | cut -c1-12) | stub tensorflow_decision_forests"
STAMP="$VENV/.reference-ready"
CONVERTER="$VENV/bin/tensorflowjs_converter"

log() { echo "setup_reference: $*" >&2; }

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$RECIPE" && -x "$CONVERTER" ]]; then
  echo "$CONVERTER"
  exit 0
fi

rm -f "$STAMP"
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check --quiet)
log "installing tensorflow-cpu==2.21.0 (uses the pip cache)"
"${PIP[@]}" "tensorflow-cpu==2.21.0" >&2
log "installing tensorflowjs==4.22.0 tf-keras==2.21.0 tensorflow-hub (--no-deps)"
"${PIP[@]}" --no-deps "tensorflowjs==4.22.0" "tf-keras==2.21.0" tensorflow-hub >&2
log "installing jax jaxlib"
"${PIP[@]}" jax jaxlib >&2
# The reach corpus's KerasHub cases: a .keras file names keras_hub classes, which Keras
# imports only when the package is installed (the same pins as this project's tests).
log "installing requirements/kerashub.lock (--no-deps)"
"${PIP[@]}" --no-deps --require-hashes -r "$ROOT/requirements/kerashub.lock" >&2

SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p "$SITE/tensorflow_decision_forests"
: > "$SITE/tensorflow_decision_forests/__init__.py"

log "verifying: converting a tiny Keras h5"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(
  cd "$WORK"
  TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" - <<'EOF'
import tf_keras
m = tf_keras.Sequential([tf_keras.layers.Input((3,)), tf_keras.layers.Dense(2, name="d")])
m.save("tiny.h5")
EOF
  TF_CPP_MIN_LOG_LEVEL=3 "$CONVERTER" --input_format=keras tiny.h5 out >"$WORK/log" 2>&1 || {
    cat "$WORK/log" >&2
    log "the reference converter failed on a tiny h5"
    exit 1
  }
  test -f out/model.json && test -f out/group1-shard1of1.bin
) || exit 1

echo "$RECIPE" > "$STAMP"
log "ok"
echo "$CONVERTER"
