#!/usr/bin/env bash
# One device call: packing vs padding only (carry .whl and .sqlgenie/models/llama-3.1-tokenizer).
#   run: bash bench/device_pack.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 UNSLOTH_DISABLE_STATISTICS=1 \
       TOKENIZERS_PARALLELISM=false OUT
python3 bench/train_gpu.py make-model /tmp/llama8b 2>&1 | tail -1
python3 bench/train_gpu.py pack /tmp/llama8b --rows ${ROWS:-800} --modes ${MODES:-pack_unsloth,pack_anchor,pack_ours} 2>&1 \
  | grep "VARLEN_CHECK\|^|\|mode" | tee "$OUT/pack.md"
