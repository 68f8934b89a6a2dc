#!/usr/bin/env bash
# One device session on nvidia-h200-x2, after the vLLM chunk calls of .vllm/README.txt (vLLM in /tmp/vsite).
# Calls back to back (the machine goes back 30 s after a call); carry in brackets:
#   PHASE=setup   [.whl .gpucarry .whl2]  training wheels + vllm-router + gguf (gguf2 converts with it: `pip download
#                                   --no-deps -d .whl gguf==0.19.0`) -> /tmp/site, Llama-3 tokenizer ->
#                 $SQLGENIE_HOME; .whl2 (orjson for vllm-router, xgrammar 0.2.8 + apache-tvm-ffi: vLLM 0.24's
#                 xgrammar 0.2.3 misreads transformers-5 tokenizers) replaces those in /tmp/vsite
#   PHASE=gguf1   [.gguf1]          parts of SmolLM2's GGUF (smolpart0, smolpart1, ...; call again with the next
#                                   parts: the repo + carry must stay under 64 MiB per call, ~38 MB of GGUF each)
#   PHASE=gguf2   [.gguf2]          the last part + SHA256: joined, checked, converted to the embedded model
#   PHASE=train   []                SmolLM2 full-data job on GPU 1 + 8B 1-GPU job then 2-GPU DDP job (job store)
#   PHASE=serve   []                8B-shaped serve job, 2 replicas: 256/512 streams vs 1 replica, kill one under load
#   PHASE=quality []                OOD yardstick for the GPU fine-tune (plain, constrained, vote 8) and the base
#   PHASE=quality2 [.gpuft]         OOD yardstick, the carried GPU fine-tune (.gpuft/adapter): constrained,
#                                   constrained + vote 8 (xgrammar 0.2.8)
#   PHASE=quality3 [.gpuft .cpuft]  OOD yardstick, each evaluation of EVALS (';' between argument sets; default:
#                                   constrained + repair, constrained + vote 8 + repair); a set names its model with
#                                   MODEL=gpu (the carried GPU fine-tune, the default), MODEL=cpu (.cpuft: the default
#                                   CPU fine-tune) or MODEL=base, e.g. EVALS="MODEL=base --constrained --repair"
#   PHASE=draft   [.gpuft (.gpudraft)]  EAGLE draft heads for the merged GPU fine-tune (pipeline/export/draft_head.py),
#                                   one per DRAFT_RENAMES x DRAFT_LRS (and a carried .gpudraft/draft); the best on
#                                   held-out test rows -> /root/draft and $OUT/draft; bench/draft_acceptance.py
#                                   reports each on the model's own answers (test split and OOD)
#   PHASE=probe   [.gpuft]          batch-1 decode of the merged GPU fine-tune outside vLLM (bench/b1_decode_probe.py):
#                                   transformers' generate vs a static-cache CUDA-graph loop, LIMIT OOD prompts
#   PHASE=steps   [.gpuprof]        where a batch-1 decode step goes in vLLM (bench/b1_step_profile.py): SmolLM2's
#                                   config + tokenizer (.gpuprof/smollm2, random weights), the step time per
#                                   VARIANTS and vLLM's torch profiler trace of the first variant
#                                   (REAL=1 for steps / first: the carried fine-tune [.gpuft], merged, real weights:
#                                   random weights decoded fp8 faster than bf16, the reverse of real ones)
#   PHASE=first   [.gpuprof]        where the first token of a batch-1 answer goes (bench/b1_first_token.py): request
#                                   overhead, cached schema, new question, product body, router, per VARIANTS
#   PHASE=numerics [.gpuft]         first-token log-probabilities per variant vs eager vLLM (bench/graph_numerics.py),
#                                   the carried fine-tune merged into the embedded model (after gguf1/gguf2)
#   PHASE=latency [.gpuft (.gpudraft)]  batch-1 answer latency per serving variant (bench/latency_b1.py), VARIANTS;
#                                   with /root/draft (PHASE=draft; or a carried .gpudraft/draft) the merged model
#                                   gets that draft head; CONCURRENT="" skips the 64-client pass; INTERLEAVE=1 serves
#                                   the variants at once and asks each question of each in turn (paired timings)
# Results land in $OUT; each phase prints a table last.   run: PHASE=train bash bench/device_session.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export SQLGENIE_HOME=/root/sqh SQLGENIE_VLLM_PYTHON=python3 VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_NO_USAGE_STATS=1 \
       DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 UNSLOTH_DISABLE_STATISTICS=1 \
       TOKENIZERS_PARALLELISM=false NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
TRAIN_PATH=/tmp/site:$PWD
SERVE_PATH=/tmp/vsite:/tmp/site:$PWD
mkdir -p "$SQLGENIE_HOME/models"
nvml() {  # record the GPUs page's samples (per GPU, per process -> job) for $1 seconds into $OUT/$2
  PYTHONPATH=$TRAIN_PATH python3 -m pipeline.monitor --seconds "$1" --interval 2 > "$OUT/$2" 2>/dev/null &
  NVML_PID=$!
}
NVML_PID=
gpuft() {  # the carried GPU fine-tune's adapter -> /root/gpuft/adapter (kept for later calls on this machine)
  [ -d /root/gpuft/adapter ] || { mkdir -p /root/gpuft && cp -r .gpuft/adapter /root/gpuft/; }
}
merged_gpuft() {  # ... merged into the embedded SmolLM2 -> /root/merged (once per machine)
  gpuft
  [ -d /root/merged ] || PYTHONPATH=$TRAIN_PATH python3 -c 'import sys; sys.path.insert(0, "bench"); from pathlib import Path; import latency_b1 as l
print(l.merged_model("embedded:smollm2-135m-instruct", "/root/gpuft/adapter", Path("/root/merged")))' 2>&1 | tail -1
}
bench_model() {  # steps / first: SmolLM2's shape with random weights, or with REAL=1 the carried fine-tune, merged
  if [ -n "${REAL:-}" ]; then merged_gpuft; BENCH_MODEL=/root/merged; else BENCH_MODEL=".gpuprof/smollm2 --dummy"; fi
}
trap '[ -n "$NVML_PID" ] && kill $NVML_PID 2>/dev/null' EXIT
case "${PHASE:-}" in
setup)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    2>&1 | tail -2
  [ -f .gpucarry/llama-tok.tar.xz ] && tar xJf .gpucarry/llama-tok.tar.xz -C "$SQLGENIE_HOME/models"
  if [ -d .whl2 ]; then
    rm -rf /tmp/vsite/xgrammar /tmp/vsite/xgrammar-*.dist-info /tmp/vsite/tvm_ffi /tmp/vsite/apache_tvm_ffi-*.dist-info
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/vsite \
      .whl2/*.whl 2>&1 | tail -2
    PYTHONPATH=$SERVE_PATH python3 -c 'import importlib.metadata as m, xgrammar; print("xgrammar", m.version("xgrammar"))'
  fi
  PYTHONPATH=$TRAIN_PATH python3 -c 'import trl, peft, sqlglot, vllm_router, liger_kernel; print("training stack ok")'
  nvidia-smi --query-gpu=index,name,memory.total --format=csv
  ;;
gguf1)
  mkdir -p /root/gguf && cp .gguf1/* /root/gguf/ && ls -la /root/gguf
  ;;
gguf2)
  cp .gguf2/* /root/gguf/ && cat /root/gguf/smolpart? > /root/gguf/smol.gguf \
    && echo "$(cat /root/gguf/SHA256)  /root/gguf/smol.gguf" | sha256sum -c - \
    && SMOLLM_GGUF=/root/gguf/smol.gguf PYTHONPATH=$TRAIN_PATH python3 -c \
       'from core import assets; print(assets.build_smollm())' 2>&1 | tail -2
  ls "$SQLGENIE_HOME/models"
  ;;
train)
  nvml 560 nvml-train.jsonl
  PYTHONPATH=$TRAIN_PATH python3 bench/device_multi.py train "$OUT" --steps ${STEPS:-40} --smol 2>&1 \
    | grep -v "it/s\]\|s/it\]" | tail -80
  run=$(ls -d "$SQLGENIE_HOME"/runs/smollm2-gpu/*/adapter 2>/dev/null | tail -1)
  [ -n "$run" ] && tar czf - -C "$(dirname "$run")" adapter result.json metrics.jsonl | split -b 12M - "$OUT/smol-adapter.tgz."
  ;;
serve)
  PYTHONPATH=$TRAIN_PATH python3 bench/device_gpu.py model-config /tmp/llama8b-cfg "$SQLGENIE_HOME/models/llama-3.1-tokenizer"
  nvml 500 nvml-serve.jsonl
  PYTHONPATH=$SERVE_PATH python3 bench/device_multi.py serve /tmp/llama8b-cfg "$OUT" 2>&1 | tail -60
  ;;
quality)
  cfg=configs/smollm2-gpu.yaml
  for args in "--adapter latest" "--adapter latest --constrained" "--adapter latest --vote 8" ""; do
    PYTHONPATH=$SERVE_PATH python3 -m pipeline evaluate -c $cfg $args --split ood --limit 216 --backend vllm \
      --merge 2>&1 | grep -v "it/s\]\|s/it\]" | tail -4
  done
  (cd "$SQLGENIE_HOME" && tar czf "$OUT/evals.tgz" runs/smollm2-gpu/*/eval evals 2>/dev/null)
  PYTHONPATH=$TRAIN_PATH python3 - <<'PY'
import json, pathlib
rows = []
for m in sorted(pathlib.Path("/root/sqh").rglob("metrics.json")):
    if "eval" not in str(m):
        continue
    d = json.loads(m.read_text())
    rows.append(f"| {m.parent.name} | {d.get('rows')} | {d.get('valid_sql_rate', 0):.3f} | {d.get('runs_rate', 0):.3f} | "
                f"{d.get('execution_accuracy', 0):.3f} | "
                f"{d.get('latency_per_question_s', 0) or 0:.3f} |")
print("| eval | n | valid | runs | EX (suite of 3 dbs) | s/question |\n|---|---|---|---|---|---|")
print("\n".join(rows))
PY
  ;;
quality2)
  mkdir -p /root/gpuft && cp -r .gpuft/adapter /root/gpuft/
  PYTHONPATH=$SERVE_PATH python3 -c 'from serving import grammar_check; print("grammar check:", grammar_check.problem() or "ok")'
  for args in "--constrained" "--constrained --vote 8"; do
    PYTHONPATH=$SERVE_PATH python3 -m pipeline evaluate -c configs/smollm2-gpu.yaml --adapter /root/gpuft/adapter \
      --label gpu-finetune $args --split ood --limit 216 --backend vllm --merge 2>&1 | grep -v "it/s\]\|s/it\]" | tail -4
  done
  (cd "$SQLGENIE_HOME" && tar czf "$OUT/evals2.tgz" evals runs 2>/dev/null --exclude='*.safetensors')
  find "$SQLGENIE_HOME" -name metrics.json -path '*eval*' -newer /root/gpuft/adapter -exec sh -c \
    'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[1], {k: d.get(k) for k in (\"rows\",\"valid_sql_rate\",\"runs_rate\",\"execution_accuracy\",\"latency_per_question_s\")})" {}' \;
  ;;
quality3)
  gpuft
  [ -d .cpuft/adapter ] && [ ! -d /root/cpuft/adapter ] && { mkdir -p /root/cpuft && cp -r .cpuft/adapter /root/cpuft/; }
  IFS=';' read -ra sets <<< "${EVALS:---constrained --repair;--constrained --vote 8 --repair}"
  for args in "${sets[@]}"; do
    case "$args" in
      *MODEL=base*) model="--label base" ;;
      *MODEL=cpu*) model="--adapter /root/cpuft/adapter --label cpu-finetune" ;;
      *) model="--adapter /root/gpuft/adapter --label gpu-finetune" ;;
    esac
    args=$(echo "$args" | sed 's/MODEL=[a-z]*//')
    echo "== $model $args"
    PYTHONPATH=$SERVE_PATH python3 -m pipeline evaluate -c configs/smollm2-gpu.yaml $model $args \
      --split ood --limit 216 --backend vllm --merge 2>&1 | grep -v "it/s\]\|s/it\]" | tail -4
    (cd "$SQLGENIE_HOME" && tar czf "$OUT/evals3.tgz" evals 2>/dev/null)   # after each: a time limit loses none
  done
  find "$SQLGENIE_HOME/evals" -name metrics.json -newer /root/gpuft/adapter -exec sh -c \
    'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[1], {k: d.get(k) for k in (\"rows\",\"valid_sql_rate\",\"runs_rate\",\"execution_accuracy\",\"latency_per_question_s\")})" {}' \;
  ;;
draft)
  merged_gpuft
  for rn in ${DRAFT_RENAMES:-0.5}; do for lr in ${DRAFT_LRS:-1e-3}; do
    PYTHONPATH=$TRAIN_PATH python3 -m pipeline.export.draft_head /root/merged --rows ${DRAFT_ROWS:-20000} \
      --held-out 200 --epochs ${DRAFT_EPOCHS:-3} --lr $lr --rename $rn --out /root/draft-$lr-r$rn 2>&1 \
      | grep "\[draft\] \(epoch\|held\)" | tail -8
  done; done
  [ -d .gpudraft/draft ] && rm -rf /root/draft-carried && cp -r .gpudraft/draft /root/draft-carried  # competes too
  best=$(python3 -c 'import json,glob; print(max(glob.glob("/root/draft-*/draft.json"), key=lambda f: json.load(open(f))["accepted_per_step"]).rsplit("/", 1)[0])')
  rm -rf /root/draft && cp -r "$best" /root/draft && cp -r /root/draft "$OUT/draft" && echo "best: $best" && cat /root/draft/draft.json
  for d in /root/draft-*/; do cp "$d/draft.json" "$OUT/$(basename "$d").json"; done
  PYTHONPATH=$TRAIN_PATH python3 bench/draft_acceptance.py /root/merged /root/draft-*/ --rows ${ACCEPT_ROWS:-100} \
    --out "$OUT/draft-acceptance.json" 2>&1 | grep "^|"
  ;;
probe)
  merged_gpuft
  PYTHONPATH=$TRAIN_PATH python3 bench/b1_decode_probe.py /root/merged --limit ${LIMIT:-40} --out "$OUT/b1-probe.json" \
    2>&1 | grep -v "it/s\]\|s/it\]\|Warning" | tail -12
  ;;
steps)
  bench_model
  PYTHONPATH=$SERVE_PATH python3 bench/b1_step_profile.py $BENCH_MODEL \
    --variants ${VARIANTS:-launcher no-stats no-async api1 fp8} --out "$OUT/step-profile.json" 2>&1 \
    | grep -v "it/s\]\|s/it\]" | tail -60
  ;;
first)
  bench_model
  PYTHONPATH=$SERVE_PATH python3 bench/b1_first_token.py $BENCH_MODEL \
    --variants ${VARIANTS:-launcher full-graph} --out "$OUT/first-token.json" 2>&1 \
    | grep -v "it/s\]\|s/it\]" | tail -70
  ;;
numerics)
  merged_gpuft
  PYTHONPATH=$SERVE_PATH python3 bench/graph_numerics.py /root/merged \
    --variants ${VARIANTS:-eager piecewise full-graph} --out "$OUT/graph-numerics.json" 2>&1 \
    | grep -v "it/s\]\|s/it\]" | tail -20
  ;;
latency)
  gpuft
  [ -d /root/draft ] || { [ -d .gpudraft/draft ] && cp -r .gpudraft/draft /root/draft; }
  draft=""; [ -d /root/draft ] && draft="--draft /root/draft"
  PYTHONPATH=$SERVE_PATH python3 bench/latency_b1.py --adapter /root/gpuft/adapter --limit ${LIMIT:-216} $draft \
    --variants ${VARIANTS:-launcher vllm-plain bf16 api1 ngram_gpu4 ngram4} --concurrent ${CONCURRENT-64} \
    ${INTERLEAVE:+--interleave} --out "$OUT/latency-h200.json" 2>&1 | grep -v "it/s\]\|s/it\]" | tail -40
  ;;
*)
  echo "PHASE must be one of setup, gguf1, gguf2, train, serve, quality, quality2, quality3, draft, probe, steps, first, numerics, latency" >&2; exit 2
  ;;
esac
