# One command per job. `make setup` is idempotent; `make test` and `make demo` call it first.
SHELL := /bin/bash
.SHELLFLAGS := -Eeuo pipefail -c
VENV := .venvs/toolkit/bin
# What `make demo` runs needs these set-up steps only (the vision-language venv and tiny model are for the tests).
DEMO_STEPS := debian toolkit model train serve

.PHONY: help setup engine test compose-test lint unit shell-test demo down bench eval reliability gpu-check clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: ## install everything (Debian packages, venvs, default model); quiet when nothing changed
	@scripts/setup.sh

engine: ## a Docker engine and the Compose v2 plugin (the compose tests need them; make demo does not)
	@scripts/setup.sh docker

test: setup engine ## linters, bats and pytest (the compose tests included), each with its closing line
	@scripts/test.sh

compose-test: setup engine ## the compose tests alone: CPU images built, every profile run with the real engine
	@scripts/test.sh unit tests/compose

lint: ## ruff, shellcheck, shfmt, hadolint only
	@scripts/test.sh lint

demo: ## set-up of what it runs, then the whole pipeline on the default model, ending in a smoke test through the gateway
	@t0=$$(date +%s); scripts/setup.sh $(DEMO_STEPS); FTK_DEMO_SETUP_SECONDS=$$(($$(date +%s) - t0)) scripts/demo.sh

down: ## stop every process `make demo` started, and a Docker engine this project started
	@scripts/demo.sh --down
	@scripts/docker-engine.sh stop

bench: setup ## benchmarks that print figures
	@scripts/bench.sh

eval: setup ## score the endpoints of EVAL_ENDPOINTS on the held-out set; exit 1 on drift or regression
	@scripts/eval.sh

reliability: setup ## bad-input matrix, fault injection, load and security, soak included; ends with a table of figures
	@scripts/reliability.sh

gpu-check: setup ## on a GPU host: train, merge, serve and benchmark through the project's scripts; table + JSON report
	@scripts/gpu-check.sh

clean: ## remove venvs, built models and runs (asks nothing: they are all rebuilt by make setup)
	rm -rf .venvs models runs .cache
