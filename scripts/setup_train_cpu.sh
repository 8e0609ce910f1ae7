#!/usr/bin/env bash
# The trainer's own virtualenv (torch CPU from the machine's wheel folder, transformers), kept
# apart from the daemon's: `pip install agentd` never pulls in torch.
#
#   scripts/setup_train_cpu.sh setup           # idempotent; ${AGENTD_TRAIN_HOME:-~/.cache/agentd/train}
#   scripts/setup_train_cpu.sh train ARGS...   # exec scripts/train_sft.py ARGS in that venv
#   scripts/setup_train_cpu.sh path            # print the venv's python (exit 1 when not set up)
set -euo pipefail

HOME_DIR="${AGENTD_TRAIN_HOME:-$HOME/.cache/agentd/train}"
VENV="$HOME_DIR/venv"
PY="$VENV/bin/python"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
HERE="$(cd "$(dirname "$0")" && pwd)"
STAMP="$VENV/.stamp-train-torch-$TORCH_VERSION-tf5"

log() { echo "setup_train_cpu: $*" >&2; }

setup() {
  [ -f "$STAMP" ] && return 0
  log "creating $VENV (torch==$TORCH_VERSION CPU, transformers)"
  mkdir -p "$HOME_DIR"
  [ -x "$PY" ] || "$PYTHON" -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip 2> >(grep -v "is ignored" >&2)
  "$PY" -m pip install -q "torch==$TORCH_VERSION" "transformers>=5,<6" safetensors \
    matplotlib 2> >(grep -v "is ignored" >&2)
  touch "$STAMP"
}

case "${1:-setup}" in
  setup) setup; log "ready: $0 train --help" ;;
  train) shift; [ -f "$STAMP" ] || setup
         export HF_HUB_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1
         exec "$PY" "$HERE/train_sft.py" "$@" ;;
  path) [ -f "$STAMP" ] && echo "$PY" || exit 1 ;;
  *) echo "usage: $0 [setup|train ARGS...|path]" >&2; exit 2 ;;
esac
