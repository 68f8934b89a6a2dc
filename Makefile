# The two commands of the README, plus helpers. Each sets up whatever is missing first (idempotent).
.PHONY: console test setup setup-serve test-all bench-data

console: setup          ## start the console (Procfile) on the embedded default
	.venv/bin/honcho start

test: setup-serve       ## the tiers CI must pass: unit + integration
	.venv/bin/python -m pytest -m "not e2e and not gpu" -q

setup:
	scripts/setup.sh

setup-serve:            ## + the serving environment (vLLM for CPU, vllm-router): the integration tier uses it
	scripts/setup.sh serve

test-all: setup         ## every CPU tier, e2e included
	scripts/setup.sh serve browser
	.venv/bin/python -m pytest -m "not gpu" -q

bench-data: setup
	.venv/bin/python bench/prepare_100k.py
