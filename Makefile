# The two commands of the README: `make demo` (the pipeline on the bundled sample) and `make test`.
# Both create .venv on first use (torch pinned to the 2.13.0 CPU build) and reuse it afterwards.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test lint setup ui server clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile --disable-pip-version-check -e ".[test]"  # torch==2.13.0 pinned in pyproject.toml
	touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" mlflow run . -e main --env-manager local --experiment-name findistill-demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

# ruff at the release pinned in pyproject.toml (tests/test_lint.py runs the same check)
lint: $(VENV)/.installed
	$(BIN)/python -m ruff check .

ui: $(VENV)/.installed
	@echo "MLflow UI (model-training view): http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning"
	$(BIN)/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" --host 127.0.0.1 --port 5000

# A tracking server for a team: PostgreSQL + mlflow server (settings, `scripts/server.sh stop`: the script's header).
# Independent of MLFLOW_TRACKING_URI above: stages log to it with MLFLOW_TRACKING_URI=http://<host>:5000.
server: $(VENV)/.installed
	FINDISTILL_PYTHON="$(CURDIR)/$(BIN)/python" scripts/server.sh

# keeps .findistill/server (the team server's database and artifacts)
clean:
	rm -rf mlruns mlartifacts mlflow.db mlflow.db.lock
	find .findistill -mindepth 1 -maxdepth 1 ! -name server -exec rm -rf {} + 2>/dev/null || true
