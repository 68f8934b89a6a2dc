#!/usr/bin/env bash
# The doors on a GPU (Step 1) and what decoding modes cost through the router there (Step 2), after the vLLM chunk
# calls of .vllm/README.txt (vLLM in /tmp/vsite). Calls back to back (the machine goes back 30 s after a call);
# carry in brackets. The repo travels with each call (64 MiB in all): move data/sqlgenie-sql/train.parquet
# (24 MB, not needed here) out of the working tree for these calls and put it back after (git checkout).
#   PHASE=gate     [.whl2 .wls .gatecarry]  vllm-router + xgrammar 0.2.8 -> /tmp/vsite, sqlglot & co -> /tmp/site, the
#                  Llama-3.1 tokenizer (.gatecarry/llama-tok.tar.xz) into a small Llama-shaped config-only model;
#                  then bench/device_gate.py:
#                  a token-gated serve job of a CUDA replica, asked from the machine's own address, a SIGSTOPped
#                  replica under a request, cancel
#   PHASE=gguf1    [.gg1 .gg2]     the first two parts of SmolLM2's GGUF -> /root/gguf
#   PHASE=decoding [.gg3 .gg4 .dlcarry]  the last parts + SHA256: joined, checked, converted to the embedded model;
#                  the CPU fine-tune's adapter (.dlcarry/adapter, without its tokenizer.json to stay under 64 MiB: the
#                  embedded model's is copied in); then
#                  bench/decoding_latency.py: plain / constrained / vote 8 / constrained + vote 8 through the router,
#                  the adapter merged, OOD questions at 8 concurrent (LIMIT, ROUNDS)
# Results land in $OUT; each phase prints a table last.   run: PHASE=gate bash bench/device_doors.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export SQLGENIE_HOME=/root/sqh SQLGENIE_VLLM_PYTHON=python3 VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_NO_USAGE_STATS=1 \
       DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
SERVE_PATH=/tmp/vsite:/tmp/site:$PWD
mkdir -p "$SQLGENIE_HOME/models"
case "${PHASE:-}" in
gate)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .wls/*.whl \
    2>&1 | tail -2
  rm -rf /tmp/vsite/xgrammar /tmp/vsite/xgrammar-*.dist-info /tmp/vsite/tvm_ffi /tmp/vsite/apache_tvm_ffi-*.dist-info
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/vsite .whl2/*.whl \
    2>&1 | tail -2
  tar xJf .gatecarry/llama-tok.tar.xz -C "$SQLGENIE_HOME/models"
  # a small Llama-3-shaped config (4 layers, the Llama-3.1 tokenizer's vocabulary), random weights: the doors do
  # not care what the weights say, and it starts (twice: the hang restart) in seconds
  PYTHONPATH=$SERVE_PATH python3 -c 'import shutil, sys; from pathlib import Path; from transformers import LlamaConfig
o = Path("/tmp/llama-small"); o.mkdir(exist_ok=True)
LlamaConfig(hidden_size=512, intermediate_size=1536, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=8,
            vocab_size=128256, max_position_embeddings=4096, bos_token_id=128000, eos_token_id=128009,
            torch_dtype="bfloat16").save_pretrained(o)
[shutil.copy(f, o / f.name) for f in Path(sys.argv[1]).iterdir()]' "$SQLGENIE_HOME/models/llama-3.1-tokenizer"
  SQLGENIE_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))') PYTHONPATH=$SERVE_PATH \
    timeout 560 python3 bench/device_gate.py /tmp/llama-small "$OUT" 2>&1 | tail -60
  ;;
gguf1)
  mkdir -p /root/gguf && cp .gg1/* .gg2/* /root/gguf/ && ls -la /root/gguf
  ;;
decoding)
  # (the build without /tmp/vsite on the path: its mistral_common makes transformers' GGUF reader ask for pycountry)
  cp .gg3/smolpart2 .gg4/smolpart3 .gg4/SHA256 /root/gguf/ && cat /root/gguf/smolpart? > /root/gguf/smol.gguf \
    && echo "$(cat /root/gguf/SHA256)  /root/gguf/smol.gguf" | sha256sum -c - \
    && SMOLLM_GGUF=/root/gguf/smol.gguf PYTHONPATH=/tmp/site:$PWD python3 -c \
       'from core import assets; print(assets.build_smollm())' 2>&1 | tail -1
  mkdir -p /root/dl && cp -r .dlcarry/adapter /root/dl/
  [ -f /root/dl/adapter/tokenizer.json ] || cp "$SQLGENIE_HOME/models/smollm2-135m-instruct/tokenizer.json" /root/dl/adapter/
  PYTHONPATH=$SERVE_PATH timeout ${LIMIT_S:-540} python3 bench/decoding_latency.py --adapter /root/dl/adapter \
    --limit ${LIMIT:-216} --concurrent 8 --rounds ${ROUNDS:-2} --out "$OUT/decoding.json" 2>&1 \
    | grep -v "it/s\]\|s/it\]" | tail -40
  ;;
*)
  echo "PHASE=gate|gguf1|decoding" >&2; exit 2
  ;;
esac
