# Two commands on a fresh Debian 12 machine: `make run` and `make test`.
# Each does the whole set-up first (virtualenv, pip install, bubblewrap; for tests chromium)
# and is idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DVC_STAMP := $(VENV)/.installed-dvc
# firejail is installed when configs/sandbox.yaml selects it, and always for the test tier:
# the attack suite runs against every real backend.
WANT_FIREJAIL := $(shell grep -qE '^jailer:[[:space:]]*firejail' configs/sandbox.yaml 2>/dev/null && echo yes)

.PHONY: setup system-deps firejail dvc data corpus browser-deps run test lint pytest e2e e2e-setup bench clean setup-gpu train-setup loop

setup: system-deps $(if $(WANT_FIREJAIL),firejail) $(STAMP)

system-deps:
	@if ! command -v bwrap >/dev/null 2>&1 || ! command -v prlimit >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "setup: installing bubblewrap"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap util-linux >/dev/null; \
	  else \
	    echo "setup: bubblewrap is missing: run 'sudo apt-get install bubblewrap' and try again" >&2; exit 2; \
	  fi; \
	fi

firejail:
	@if ! command -v firejail >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "setup: installing firejail"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends firejail >/dev/null; \
	  else \
	    echo "setup: firejail is missing: run 'sudo apt-get install firejail' and try again" >&2; exit 2; \
	  fi; \
	fi

# DVC (artifact tracking of the corpus and the exports) is an optional extra: `make dvc`.
dvc: setup $(DVC_STAMP)

$(DVC_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install -q -e '.[dev,dvc]'
	@touch $(DVC_STAMP)

# Rebuild the corpus, running only the stages of dvc.yaml whose deps changed.
data: dvc
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro build

# The task corpus, built once when missing (what `agentd run` does on its own first run); the
# tests that run real dev tasks read it, so its few minutes are not spent inside a test.
corpus: setup
	@test -s data/processed/dev/tasks.jsonl || { $(BIN)/agentd data fetch && $(BIN)/agentd data build; }

# Debian's chromium, headless, for the viewer's browser tests (tests/viewer); only the test
# tier needs it, so `make run` never installs a browser.
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "setup: installing chromium (viewer tests)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	  else \
	    echo "setup: chromium is missing: run 'sudo apt-get install chromium' and try again" >&2; exit 2; \
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
	$(BIN)/ruff check agentd tests benchmarks scripts
	$(BIN)/mypy --strict agentd scripts/loop.py

pytest: setup firejail dvc browser-deps corpus
	$(BIN)/pytest -m "not e2e"

# The e2e tier: a real vLLM (CPU build) serving SmolLM2-135M, set up once into
# ~/.cache/agentd/vllm by the project's own script (about 14 min the first time, then a no-op).
e2e-setup:
	bash scripts/setup_vllm_cpu.sh setup

e2e: setup e2e-setup train-setup
	$(BIN)/pytest -m e2e tests/e2e

# apt-get first (its lock allows one at a time); then the vLLM and trainer set-ups (mostly
# downloads) run beside lint and the suite instead of after them, and the e2e tier last.
test: setup firejail dvc browser-deps
	$(MAKE) --no-print-directory -j3 lint pytest e2e-setup train-setup
	$(MAKE) --no-print-directory e2e

# The closed loop on this CPU box (docs/loop.md): collect verified trajectories,
# train SmolLM2-135M on them in its own venv, serve the untuned and the tuned model with the
# CPU vLLM and evaluate both side by side into reports/loop/report.md. Resumes after a kill.
LOOP_ARGS ?=
train-setup:
	bash scripts/setup_train_cpu.sh setup

loop: setup firejail corpus e2e-setup train-setup
	$(BIN)/python scripts/loop.py $(LOOP_ARGS)

# A GPU host (as root, checkout in /opt/agentd): the vLLM venv, each actor's model fetched into
# HF_HOME, the env files and the vllm-actor@ template (scripts/setup_gpu_host.sh; docs/real-models.md, "A GPU host").
setup-gpu: setup
	bash scripts/setup_gpu_host.sh all

bench: setup firejail e2e-setup
	$(BIN)/python benchmarks/sandbox.py
	$(BIN)/python benchmarks/state_store.py
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/step_cost.py
	$(BIN)/python benchmarks/llm_saturation.py
	$(BIN)/python benchmarks/hostile_inputs.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
