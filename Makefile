# The two front-door commands: `make run` and `make test`. Both build .venv on first use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: run test lint typecheck bench services clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

## run: maintd on the embedded default (SQLite) with the example plan, API on http://127.0.0.1:8470
run: $(BIN)/.installed
	$(BIN)/maintd serve --plan examples/plan

## test: the whole suite against real SQLite and PostgreSQL (started if needed), 4 workers in parallel
test: $(BIN)/.installed services
	$(BIN)/pytest -n 4 --dist worksteal

services:
	scripts/services.sh

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(BIN)/.installed
	$(BIN)/mypy

## bench: the benchmarks, printed as a table (see docs/benchmarks.md)
bench: $(BIN)/.installed services
	scripts/bench-tools.sh
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
