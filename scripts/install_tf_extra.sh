#!/usr/bin/env bash
# Install the optional [tf] extra (tensorflow-cpu + onnx2tf) into the project venv.
# Usage: scripts/install_tf_extra.sh [VENV]   (default: $EDGEPRUNE_VENV or <repo>/.venv)
# Idempotent: does nothing when the pinned versions are already installed.
# The steps and their order follow ../shared/docs/toolchain.md §1 and pitfalls 4-8:
#   * tensorflow-cpu (not `tensorflow`) with the project constraints,
#   * onnx2tf and tf-keras with --no-deps (their metadata would pull `tensorflow` and downgrade numpy/onnx),
#   * onnx2tf's real runtime dependencies added by hand, again with the constraints.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-${EDGEPRUNE_VENV:-$ROOT/.venv}}"
VENV="$(cd "$VENV" 2>/dev/null && pwd || echo "$VENV")"
PY="$VENV/bin/python"
CONSTRAINTS="$ROOT/constraints.txt"

if [[ ! -x "$PY" ]]; then
  echo "install_tf_extra: no virtualenv at $VENV (set EDGEPRUNE_VENV or create .venv first)" >&2
  exit 1
fi
PIP=("$PY" -m pip install --disable-pip-version-check)

already_installed() {
  "$PY" - <<'PY' 2>/dev/null
import importlib.metadata as md, shutil, sys, os
want = {"tensorflow-cpu": "2.21.0", "onnx2tf": "1.29.24", "tf-keras": "2.21.0", "onnxsim": "0.8.1"}
for name, ver in want.items():
    if md.version(name) != ver:
        sys.exit(1)
for name in ("onnx-graphsurgeon", "sng4onnx", "sne4onnx", "psutil"):
    md.version(name)
# onnx2tf runs the onnxsim CLI from the venv's bin directory
if not os.path.exists(os.path.join(os.path.dirname(sys.executable), "onnxsim")):
    sys.exit(1)
PY
}

if already_installed; then
  echo "install_tf_extra: [tf] extra already installed in $VENV (tensorflow-cpu 2.21.0, onnx2tf 1.29.24)"
  exit 0
fi

run() { echo "+ $*"; "$@"; }

echo "install_tf_extra: installing the [tf] extra into $VENV"
run "${PIP[@]}" -c "$CONSTRAINTS" "tensorflow-cpu==2.21.0"
# --no-deps: tf-keras and onnx2tf name `tensorflow` (not -cpu) and onnx2tf hard-pins an older stack.
run "${PIP[@]}" --no-deps "onnx2tf==1.29.24" "tf-keras==2.21.0"
run "${PIP[@]}" -c "$CONSTRAINTS" onnx-graphsurgeon sng4onnx sne4onnx psutil "onnxsim==0.8.1"

if already_installed; then
  echo "install_tf_extra: done"
else
  echo "install_tf_extra: packages installed but the version check failed" >&2
  exit 1
fi
