#!/usr/bin/env bash
# One device call for the training measurements (carry .whl and .sqlgenie/models/llama-3.1-tokenizer):
# installs the carried wheels, FP8/bf16 GEMM profile, random-init 8B, packing vs padding on Gretel-like
# lengths, then QLoRA without recompute at micro-batch 1 with 8-bit AdamW. Results land in $OUT.
#   run: bash bench/device_train.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 UNSLOTH_DISABLE_STATISTICS=1 \
       TOKENIZERS_PARALLELISM=false OUT
python3 bench/train_gpu.py gemm 2>&1 | grep -v Warning | tail -8 | tee "$OUT/gemm.md"
python3 bench/train_gpu.py make-model /tmp/llama8b 2>&1 | tail -1
python3 bench/train_gpu.py pack /tmp/llama8b --rows ${ROWS:-800} 2>&1 | grep -v "Map\|it/s\]" | tail -12 | tee "$OUT/pack.md"
python3 bench/train_gpu.py all /tmp/llama8b --modes qlora_mb1_8bit --steps 3 2>&1 | tail -4 | tee "$OUT/qlora.md"
