#!/usr/bin/env bash
# Set up a GPU host for the vLLM actors of configs/vllm_actors.yaml (idempotent; run as root).
#
#   scripts/setup_gpu_host.sh [--dry-run] venv     # $VLLM_VENV with vllm==$VLLM_VERSION (CUDA)
#   scripts/setup_gpu_host.sh [--dry-run] fetch    # each actor's model into $HF_HOME (online)
#   scripts/setup_gpu_host.sh [--dry-run] units    # user vllm, env files, the unit template
#   scripts/setup_gpu_host.sh [--dry-run] all      # the three, in that order
#
# The unit then runs with HF_HUB_OFFLINE=1: the fetch step is the only time a model is
# downloaded. Paths (override in the environment): AGENTD_HOME=/opt/agentd (this checkout),
# VLLM_VENV=$AGENTD_HOME/.venv-vllm, HF_HOME=/var/lib/vllm/huggingface (the unit's
# StateDirectory, writable under its hardening), AGENTD_ETC=/etc/agentd,
# SYSTEMD_DIR=/etc/systemd/system. --dry-run prints each command instead of running it.
set -euo pipefail

AGENTD_HOME="${AGENTD_HOME:-/opt/agentd}"
VLLM_VENV="${VLLM_VENV:-$AGENTD_HOME/.venv-vllm}"
HF_HOME="${HF_HOME:-/var/lib/vllm/huggingface}"
AGENTD_ETC="${AGENTD_ETC:-/etc/agentd}"
SYSTEMD_DIR="${SYSTEMD_DIR:-/etc/systemd/system}"
AGENTD_PY="${AGENTD_PY:-$AGENTD_HOME/.venv/bin/python}"
AGENTD_CONFIG="${AGENTD_CONFIG:-$AGENTD_HOME/configs/agentd.yaml}"
PYTHON="${PYTHON:-python3}"
VLLM_VERSION="0.32.0"
DRY=0

log() { echo "setup_gpu_host: $*" >&2; }
run() { if [ "$DRY" = 1 ]; then echo "+ $*"; else "$@"; fi; }

venv() {
  if [ -f "$VLLM_VENV/.stamp-vllm-$VLLM_VERSION" ]; then return 0; fi
  log "creating $VLLM_VENV with vllm==$VLLM_VERSION"
  run "$PYTHON" -m venv "$VLLM_VENV"
  run "$VLLM_VENV/bin/pip" install -q --upgrade pip
  run "$VLLM_VENV/bin/pip" install -q "vllm==$VLLM_VERSION"
  run touch "$VLLM_VENV/.stamp-vllm-$VLLM_VERSION"
}

fetch() {
  local models
  models="$("$AGENTD_PY" -m agentd.policies.units --config "$AGENTD_CONFIG" models)"
  run mkdir -p "$HF_HOME"
  for model in $models; do
    log "fetching $model into $HF_HOME"
    run env HF_HOME="$HF_HOME" HF_HUB_OFFLINE=0 "$VLLM_VENV/bin/python" -c \
      "import sys; from huggingface_hub import snapshot_download; snapshot_download(sys.argv[1])" \
      "$model"
  done
  if id vllm >/dev/null 2>&1; then run chown -R vllm:vllm "$HF_HOME"; fi
}

units() {
  if ! id vllm >/dev/null 2>&1; then
    run useradd --system --home-dir /var/lib/vllm --no-create-home --shell /usr/sbin/nologin vllm
  fi
  run "$AGENTD_PY" -m agentd.policies.units --config "$AGENTD_CONFIG" \
    --out "$AGENTD_ETC/vllm-actors" --hf-home "$HF_HOME"
  run install -m 0644 "$AGENTD_HOME/systemd/vllm-actor@.service" "$SYSTEMD_DIR/"
  run systemctl daemon-reload
  log "start them: systemctl enable --now $("$AGENTD_PY" -m agentd.policies.units \
    --config "$AGENTD_CONFIG" instances | tr '\n' ' ')"
}

if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
case "${1:-all}" in
  venv) venv ;;
  fetch) fetch ;;
  units) units ;;
  all) venv; fetch; units ;;
  *) echo "usage: $0 [--dry-run] [venv|fetch|units|all]" >&2; exit 2 ;;
esac
