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

# --- benchmarks (benchmarks/README.md); results go to benchmarks/results/ (not versioned) ---
.PHONY: bench-baseline bench-scale
BENCH_RESULTS := benchmarks/results
# Phase order, end to end last (it then finds the kernels loaded).
BENCH_FILES := $(addprefix benchmarks/test_bench_,profiles.py powerflow.py model_build.py \
	solve.py end_to_end.py)
BENCH_PYTEST := $(BIN)/python -m pytest $(BENCH_FILES) -p no:cacheprovider -q \
	--benchmark-sort=fullname --benchmark-columns=min,median,iqr,rounds --durations=8
# Gate runs (check and baseline): gridflex's own cases only, quick size, one thread, timed in
# process CPU time, so that co-tenants queueing for the 2 cores do not read as a regression.
BENCH_GATE := NUMBA_NUM_THREADS=1 GRIDFLEX_BENCH_SIZE=quick $(BENCH_PYTEST) -m "not peer" \
	--benchmark-timer=time.process_time --benchmark-json=$(BENCH_RESULTS)/check.json

$(BENCH_RESULTS):
	mkdir -p $@ && printf '*\n' > $@/.gitignore

bench-quick: $(TEST_STAMP) | $(BENCH_RESULTS)
	GRIDFLEX_BENCH_SIZE=quick $(BENCH_PYTEST) --benchmark-json=$(BENCH_RESULTS)/quick.json
	$(BIN)/python -m benchmarks.report $(BENCH_RESULTS)/quick.json

bench: $(TEST_STAMP) | $(BENCH_RESULTS)
	GRIDFLEX_BENCH_SIZE=full $(BENCH_PYTEST) --benchmark-json=$(BENCH_RESULTS)/full.json
	$(BIN)/python -m benchmarks.report $(BENCH_RESULTS)/full.json
	$(BIN)/python -m benchmarks.scale_curves --out-dir $(BENCH_RESULTS)

bench-scale: $(TEST_STAMP) | $(BENCH_RESULTS)
	$(BIN)/python -m benchmarks.scale_curves --out-dir $(BENCH_RESULTS)

bench-check: $(TEST_STAMP) | $(BENCH_RESULTS)
	$(BENCH_GATE)
	$(BIN)/python -m benchmarks.gate check --rerun-failed $(BENCH_RESULTS)/check.json

bench-baseline: $(TEST_STAMP) | $(BENCH_RESULTS)
	$(BENCH_GATE)
	$(BIN)/python -m benchmarks.gate record $(BENCH_RESULTS)/check.json

# --- mutation testing (tests/mutation/campaign.py); not part of `make test` ---
# Each model file mutated against the tests that cover it; per-file scores and the surviving
# mutants land in out/mutation/report.md. FILES="sim/baseline.py ..." narrows the run.
.PHONY: mutate
MUTATE_STAMP := $(VENV)/.installed-mutate

$(MUTATE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,mutate]"
	touch $(STAMP) $(TEST_STAMP) $@

mutate: $(MUTATE_STAMP)
	$(BIN)/python -m tests.mutation.campaign $(FILES)
