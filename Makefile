# The two commands of the README: `make demo` (the pipeline on the bundled sample) and `make test`.
# Both create .venv on first use (torch pinned to the 2.13.0 CPU build) and reuse it afterwards.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test setup ui clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile --disable-pip-version-check -e ".[test]"  # torch==2.13.0 pinned in pyproject.toml
	touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" mlflow run . -e main --env-manager local --experiment-name findistill-demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

ui: $(VENV)/.installed
	$(BIN)/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" --host 127.0.0.1 --port 5000

clean:
	rm -rf mlruns mlartifacts .findistill mlflow.db
