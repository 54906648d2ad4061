# `make run` and `make test` set themselves up from nothing: a virtual environment
# in .venv with the package and every tool the checks need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= config/aggregator.toml

.PHONY: run test lint typecheck pytest bench clean venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,postgres]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/aggregator --config $(CONFIG) run

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check aggregator tests bench
	$(BIN)/ruff format --check aggregator tests bench

typecheck: $(STAMP)
	$(BIN)/mypy aggregator

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var bench/out .mypy_cache .ruff_cache .pytest_cache .hypothesis
