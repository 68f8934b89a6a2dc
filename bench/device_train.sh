#!/usr/bin/env bash
# One device call for the training measurements (carry .whl and .sqlgenie/models/llama-3.1-tokenizer):
# installs the carried wheels, makes the random-init 8B, then in the same run the best anchor (Unsloth bf16
# no recompute), our auto plan and our FP8-base plan on fixed 1024-token rows, then packing vs padding on
# Gretel-like lengths (anchor padded, ours packed in bf16 and FP8). Results land in $OUT.
#   run: bash bench/device_train.sh            (GEMM profile alone: python3 bench/train_gpu.py gemm)
set -uo pipefail
OUT=${OUT:-/tmp/out}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 UNSLOTH_DISABLE_STATISTICS=1 \
       TOKENIZERS_PARALLELISM=false OUT
python3 bench/train_gpu.py make-model /tmp/llama8b 2>&1 | tail -1
python3 bench/train_gpu.py all /tmp/llama8b --modes ${MODES:-unsloth_bf16_nogc,ours_auto,ours_fp8} 2>&1 | grep "^|\|mode" | tee "$OUT/fixed.md"
python3 bench/train_gpu.py pack /tmp/llama8b --rows ${ROWS:-800} --modes ${PACK_MODES:-pack_anchor,pack_ours,pack_ours_fp8} 2>&1 \
  | grep "VARLEN_CHECK\|^|\|mode" | tee "$OUT/pack.md"
