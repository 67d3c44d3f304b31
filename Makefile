# One command per job. `make setup` is idempotent; `make test` and `make demo` call it first.
SHELL := /bin/bash
.SHELLFLAGS := -Eeuo pipefail -c
VENV := .venvs/toolkit/bin

.PHONY: help setup test lint unit shell-test demo down bench eval reliability clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: ## install everything (Debian packages, venvs, default model); quiet when nothing changed
	@scripts/setup.sh

test: setup ## linters, pytest and bats, each with its closing line
	@scripts/test.sh

lint: ## ruff, shellcheck, shfmt, hadolint only
	@scripts/test.sh lint

demo: setup ## the whole pipeline on the embedded default model, ending in a smoke test through the gateway
	@scripts/demo.sh

down: ## stop every process `make demo` started
	@scripts/demo.sh --down

bench: setup ## benchmarks that print figures
	@scripts/bench.sh

eval: setup ## score the endpoints of EVAL_ENDPOINTS on the held-out set; exit 1 on drift or regression
	@scripts/eval.sh

reliability: setup ## bad-input matrix, fault injection, load and security, soak included; ends with a table of figures
	@scripts/reliability.sh

clean: ## remove venvs, built models and runs (asks nothing: they are all rebuilt by make setup)
	rm -rf .venvs models runs .cache
