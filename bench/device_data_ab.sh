#!/usr/bin/env bash
# The training data A/B on a GPU: the same GPU recipe (configs/smollm2-gpu.yaml) trained on each data set of
# DATASETS, each scored on the OOD yardstick by the same evaluation, one table last. For the generator's
# choices (Step 2): what the data changes, with everything else equal.
# Calls back to back (the machine goes back 30 s after a call); carry in brackets:
#   STEP=parts   [.whl .gg1]        training wheels -> /tmp/site; the first part of SmolLM2's GGUF -> /root/gguf
#   STEP=parts   [.gg2 .nd1]        the next part; a data set's train.parquet -> /root/data (.nd*: data folders)
#   STEP=train   [.gg3 .nd2]        the last parts + SHA256: joined, checked, converted to the embedded model;
#                                   then one training per DATASETS entry (name=parquet under /root/data, or
#                                   bundled:train, the bundled data), all at once on the one GPU (a 135M model
#                                   leaves it mostly idle); a data set's test.parquet beside it gives the eval loss
#   STEP=eval    []                 each run's adapter on the OOD yardstick (EVALS: argument sets, ';' between;
#                                   default: greedy, greedy + repair), transformers backend (no vLLM needed)
# Results land in $OUT (runs' result.json, metrics, eval metrics, logs); the table is printed last.
#   run: STEP=train DATASETS="old=bundled:train new=/root/data/new/train.parquet" bash bench/device_data_ab.sh
# EXTRA: more overrides for every training (e.g. train.max_steps=2 for a dry run on a CPU); EVAL_EXTRA: more
# evaluate flags (e.g. --limit 3).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export SQLGENIE_HOME=${SQLGENIE_HOME:-/root/sqh} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
       UNSLOTH_DISABLE_STATISTICS=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export PYTHONPATH=/tmp/site:$PWD
DATASETS=${DATASETS:-"old=bundled:train new=/root/data/new/train.parquet"}
EVALS=${EVALS:-"--split ood;--split ood --repair"}
PY=${PY:-python3}
sq() { "$PY" -m app.cli "$@"; }
carried() {  # what this call carried: GGUF parts -> /root/gguf, data files -> /root/data
  mkdir -p /root/gguf /root/data
  for d in .gg*; do [ -d "$d" ] && cp "$d"/* /root/gguf/; done
  for d in .nd*; do [ -d "$d" ] && cp -r "$d"/* /root/data/; done
  ls -la /root/gguf /root/data
}

case ${STEP:-} in
parts)
  if [ -d .whl ] && [ ! -d /tmp/site/trl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || exit 1
  fi
  carried
  ;;
train)
  carried
  if [ ! -d "$SQLGENIE_HOME/models/smollm2-135m-instruct" ]; then
    cat /root/gguf/smolpart? > /root/gguf/smol.gguf \
      && echo "$(cat /root/gguf/SHA256)  /root/gguf/smol.gguf" | sha256sum -c - \
      && SMOLLM_GGUF=/root/gguf/smol.gguf "$PY" -c 'from core import assets; print(assets.build_smollm())' 2>&1 | tail -1
  fi
  pids=()
  for ds in $DATASETS; do
    name=${ds%%=*}; path=${ds#*=}
    test_path=bundled:test; [ "$path" != bundled:train ] && test_path=$(dirname "$path")/test.parquet
    sq train -c configs/smollm2-gpu.yaml "name=ab-$name" "data.sources.0.path=$path" \
      "data.eval_sources.0.path=$test_path" ${EXTRA:-} > "$OUT/train-$name.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  printf '\n| data | steps | train loss | eval loss | s |\n|---|---|---|---|---|\n'
  for ds in $DATASETS; do
    name=${ds%%=*}; run=$(ls -d "$SQLGENIE_HOME"/runs/ab-$name/*/ 2>/dev/null | tail -1)
    [ -f "$run/result.json" ] || { echo "| $name | failed: $(tail -3 "$OUT/train-$name.log" | tr '\n' ' ') |"; continue; }
    cp "$run/result.json" "$OUT/result-$name.json"
    "$PY" -c "import json,sys; r=json.load(open('$run/result.json')); g=r.get
print(f\"| $name | {g('steps')} | {g('train_loss')} | {g('eval_loss')} | {g('seconds')} |\")"
  done
  ;;
eval)
  printf '' > "$OUT/eval.md"
  for ds in $DATASETS; do
    name=${ds%%=*}; run=$(ls -d "$SQLGENIE_HOME"/runs/ab-$name/*/ 2>/dev/null | tail -1)
    IFS=';' read -ra sets <<< "$EVALS"
    for args in "${sets[@]}"; do
      label="ab-$name$(echo "$args" | tr -d ' -' | sed 's/splitood//')"
      # shellcheck disable=SC2086
      sq evaluate -c configs/smollm2-gpu.yaml --adapter "$run/adapter" --backend transformers $args --label "$label" ${EVAL_EXTRA:-} \
        > "$OUT/eval-$label.log" 2>&1
      m=$(ls -d "$run"/eval/"$label"*/metrics.json 2>/dev/null | tail -1)
      [ -f "$m" ] && cp "$m" "$OUT/metrics-$label.json"
      "$PY" -c "import json,sys; m=json.load(open('$m')) if '$m' else {}; g=lambda k: m.get(k)
print(f\"| $name | $args | {g('execution_accuracy'):.3f} | {g('valid_sql_rate'):.3f} | {g('runs_rate'):.3f} | {g('scored')} |\")" >> "$OUT/eval.md" 2>/dev/null \
        || echo "| $name | $args | failed: $(tail -2 "$OUT/eval-$label.log" | tr '\n' ' ') |" >> "$OUT/eval.md"
    done
  done
  printf '\n| data | evaluation | right | valid | runs | n |\n|---|---|---|---|---|---|\n'; cat "$OUT/eval.md"
  ;;
*)
  echo "STEP must be parts, train or eval" >&2; exit 2 ;;
esac
