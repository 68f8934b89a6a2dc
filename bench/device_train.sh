#!/usr/bin/env bash
# Device calls for the training measurements (carry .whl and .sqlgenie/models/llama-3.1-tokenizer). Installs
# the carried wheels and makes the random-init 8B (both skipped when a warm machine has them), then:
#   PHASE=fixed  FP8 numerics (fp8-check); the best anchor (Unsloth bf16 no recompute), our auto plan, our TRL
#                backend in bf16 and with the FP8 base, on fixed 1024-token rows, each with one profiled step
#   PHASE=pack   Unsloth QLoRA vs our QLoRA plan under a 13 GiB budget; then packing vs padding on Gretel-like
#                lengths (anchor padded, ours packed in bf16 and FP8, with a profiled packed step)
#   PHASE=layers frozen-base LoRA layers per 8B projection shape: bf16, our FP8 base, torchao float8 row-wise
#   PHASE=all    both (over 10 minutes with every mode: two calls back to back are the way on the device tool)
# MODES / QLORA_MODES / PACK_MODES pick the stacks (empty: that part is skipped). Results land in $OUT.
#   run: PHASE=fixed bash bench/device_train.sh; PHASE=pack bash bench/device_train.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}
PHASE=${PHASE:-all}
MODES=${MODES-unsloth_bf16_nogc,ours_auto,ours_bf16,ours_fp8}
QLORA_MODES=${QLORA_MODES-unsloth_qlora,ours_qlora13}
PACK_MODES=${PACK_MODES-pack_anchor,pack_ours,pack_ours_fp8}
[ -f /tmp/site/.sqlgenie-wheels ] || { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2 && touch /tmp/site/.sqlgenie-wheels; }
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 UNSLOTH_DISABLE_STATISTICS=1 \
       TOKENIZERS_PARALLELISM=false OUT
if [ "$PHASE" = layers ]; then
  python3 bench/train_gpu.py layers 2>&1 | grep "^|\|LAYERS" | tee "$OUT/layers.md"
  exit 0
fi
[ -f /tmp/llama8b/.complete ] || { python3 bench/train_gpu.py make-model /tmp/llama8b 2>&1 | tail -1 && touch /tmp/llama8b/.complete; }
if [ "$PHASE" != pack ]; then
  python3 bench/train_gpu.py fp8-check 2>&1 | grep "FP8_CHECK\|Error" | tee "$OUT/fp8_check.md"
  [ -n "$MODES" ] && python3 bench/train_gpu.py all /tmp/llama8b --profile --modes "$MODES" 2>&1 \
    | grep "^|\|mode\|PROFILE\|PLAN" | tee "$OUT/fixed.md"
fi
if [ "$PHASE" != fixed ]; then
  [ -n "$QLORA_MODES" ] && python3 bench/train_gpu.py all /tmp/llama8b --modes "$QLORA_MODES" 2>&1 \
    | grep "^|\|mode\|PLAN" | tee "$OUT/qlora.md"
  [ -n "$PACK_MODES" ] && python3 bench/train_gpu.py pack /tmp/llama8b --profile --rows ${ROWS:-800} --modes "$PACK_MODES" 2>&1 \
    | grep "VARLEN_CHECK\|^|\|mode\|PROFILE" | tee "$OUT/pack.md"
fi
true
