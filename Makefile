# The two commands a new machine needs: `make run` and `make test`.
# DNC_* variables from the caller's environment pass straight through.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/dnc: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/dnc
	exec $(BIN)/dnc serve

lint: $(BIN)/dnc
	$(BIN)/ruff check registry loader tests benchmarks
	$(BIN)/ruff format --check registry loader tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

bench: $(BIN)/dnc
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
