# Two commands on a fresh Debian 12 machine: `make run` and `make test`.
# Each does the whole set-up first (virtualenv, pip install, bubblewrap) and is idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps run test lint pytest e2e e2e-setup bench clean

setup: system-deps $(STAMP)

system-deps:
	@if ! command -v bwrap >/dev/null 2>&1 || ! command -v prlimit >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "setup: installing bubblewrap"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap util-linux >/dev/null; \
	  else \
	    echo "setup: bubblewrap is missing: run 'sudo apt-get install bubblewrap' and try again" >&2; exit 2; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(BIN)/agentd run

lint: setup
	$(BIN)/ruff check agentd tests benchmarks
	$(BIN)/mypy --strict agentd

pytest: setup
	$(BIN)/pytest -m "not e2e"

# The e2e tier: a real vLLM (CPU build) serving SmolLM2-135M, set up once into
# ~/.cache/agentd/vllm by the project's own script (about 14 min the first time, then a no-op).
e2e-setup:
	bash scripts/setup_vllm_cpu.sh setup

e2e: setup e2e-setup
	$(BIN)/pytest -m e2e tests/e2e

test: lint pytest e2e

bench: setup e2e-setup
	$(BIN)/python benchmarks/sandbox.py
	$(BIN)/python benchmarks/state_store.py
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/llm_saturation.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
