# gridflex: `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
export OPENBLAS_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg

.PHONY: run test test-slow bench bench-quick bench-check lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP) $@

run: $(STAMP)
	$(BIN)/gridflex run cigre_lv_winter -o out/cigre_lv_winter

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(TEST_STAMP)
	$(BIN)/python -m pytest -m slow -q

lint: $(TEST_STAMP)
	$(BIN)/ruff check sim customers optimizer scenarios benchmarks tests

clean:
	rm -rf $(VENV) out .pytest_cache .benchmarks
