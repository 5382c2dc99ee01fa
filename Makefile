# The two commands a new machine needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench-quick

$(BIN)/followup: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/followup

setup: $(BIN)/followup

# Sets everything up and runs the main job on the embedded default (SQLite, synthetic HIS).
demo: setup
	$(BIN)/followup demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/vulture

test: setup lint
	$(BIN)/pytest -q

# The benchmarks also need the `bench` extra (panoramisk, the FastAGI baseline).
bench-quick: setup
	$(BIN)/pip install -q -e '.[dev,bench]'
	for b in bench/*.py; do $(BIN)/python $$b --quick || exit 1; done
