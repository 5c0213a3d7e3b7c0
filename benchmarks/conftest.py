"""The benchmark harness: size selection, BLAS pinning, calibration, the slowdown switch.

Every benchmark goes through the `measure` fixture, which

- times the callable with pytest-benchmark (``pedantic``: fixed rounds, one warm-up round that
  also absorbs Numba JIT loading);
- times the fixed calibration workload (`benchmarks.calibration`) right before and right after,
  so the stored figure ``time ÷ calibration`` follows the machine's speed at that moment;
- records in ``extra_info`` what the report and the gate need (case, implementation, whether it
  is a peer, units of work, the scale factor of a peer timed on fewer units).

``GRIDFLEX_BENCH_SLOWDOWN=N`` (integer ≥ 1) makes the harness run gridflex's own callable ``N``
times per round. It exists only to prove that the gate catches a slower kernel
(``tests/benchmarks/test_gate.py``); no production code reads it, and results are unchanged.
"""

from __future__ import annotations

import copy
import importlib
import math
import os
from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.calibration import CALIBRATION_VERSION, measure_calibration
from benchmarks.registry import SIZE_ENV, Case, bench_size, cases

SLOWDOWN_ENV = "GRIDFLEX_BENCH_SLOWDOWN"
GRIDFLEX = "gridflex"
#: Timed rounds per benchmark (after one warm-up round), by size.
ROUNDS = {"tiny": 5, "quick": 5, "full": 3}
#: Calibration repeats before and after each benchmark.
CALIBRATION_AROUND = 3
#: A round shorter than this repeats the call (pytest-benchmark ``iterations``) so that timer
#: and scheduler noise stay small against it [s].
MIN_ROUND_S = 0.05
MAX_ITERATIONS = 100


def slowdown_factor() -> int:
    """The deliberate slowdown of gridflex's own callables (1 = none), from the environment."""
    raw = os.environ.get(SLOWDOWN_ENV, "1").strip() or "1"
    try:
        factor = int(raw)
    except ValueError:
        raise pytest.UsageError(f"{SLOWDOWN_ENV}: '{raw}' is not an integer") from None
    if factor < 1:
        raise pytest.UsageError(f"{SLOWDOWN_ENV}: must be ≥ 1, got {factor}")
    return factor


def slowed(fn: Callable[..., Any], factor: int) -> Callable[..., Any]:
    """``fn`` doing its whole work ``factor`` times per call (same result, ``factor``× the time)."""
    if factor == 1:
        return fn

    def repeated(*args, **kwargs):
        for _ in range(factor - 1):
            fn(*args, **kwargs)
        return fn(*args, **kwargs)

    return repeated


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-size", action="store", default=None,
        help=f"Benchmark size: tiny, quick or full (default ${SIZE_ENV} or quick).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "peer: a peer implementation measured for comparison")
    config.addinivalue_line(
        "markers", "cases(phase, skip=()): parametrize the test's `case` over the registry cases "
        "of the phase at this run's size")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("cases")
    if marker is None:
        return
    try:
        size = bench_size(metafunc.config.getoption("--bench-size"))
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    skip = marker.kwargs.get("skip", ())
    selected = [case for case in cases(marker.args[0], size) if case.name not in skip]
    metafunc.parametrize("case", selected, ids=[case.name.partition("/")[2] for case in selected])


@pytest.fixture(scope="session")
def size(request: pytest.FixtureRequest) -> str:
    """The size of this run (``tiny``, ``quick`` or ``full``)."""
    try:
        return bench_size(request.config.getoption("--bench-size"))
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.fixture(scope="session", autouse=True)
def _single_blas_thread():
    """Pin BLAS/OpenMP pools to one thread: spinning OpenBLAS workers on a busy 2-core box made
    sparse solves 75–320× slower (PEERS.md). Numba's own threads are left as configured."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def network_factory():
    """``factory(source)`` → a fresh deep copy of the net (loaded once per session)."""
    from sim.network import load_network

    loaded: dict[str, Any] = {}

    def factory(source: str):
        if source not in loaded:
            loaded[source] = load_network(source)
        return copy.deepcopy(loaded[source])

    return factory


def _clock(config: pytest.Config) -> tuple[str, Callable[[], float]]:
    """The timer pytest-benchmark uses (``--benchmark-timer``), for calibration and warm-up."""
    name = str(config.getoption("benchmark_timer"))
    module, _, attribute = name.rpartition(".")
    return name, getattr(importlib.import_module(module or "time"), attribute)


@pytest.fixture
def measure(benchmark, size: str, request: pytest.FixtureRequest):
    """``measure(case, implementation, fn, *, units, unit, scale=1, peer=False, note="")``.

    Parameters (of the returned callable)
    -------------------------------------
    case
        The registry case measured.
    implementation
        ``"gridflex"`` for the project's code, else the peer's name.
    fn
        Zero-argument callable doing one round of work.
    units, unit
        Work the case represents at this size (e.g. 2976 "steps") — throughput = units ÷ time.
    scale
        The measured time × ``scale`` is the time of the case's full work (a peer timed on
        fewer steps or customers); 1 when the callable does the whole case.
    peer
        True for comparison implementations (never gated, never slowed down).
    note
        Shown in the report (e.g. "timed on 24 steps, scaled").
    self_timed
        ``fn`` returns ``(seconds, result)``, timing only its own core (a peer adapter that
        converts its model first); the report then uses those seconds (``extra_info["timed_s"]``)
        instead of the wall time of the whole call.
    """
    factor = slowdown_factor()
    clock_name, clock = _clock(request.config)

    def run(case: Case, implementation: str, fn: Callable[[], Any], *, units: float, unit: str,
            scale: float = 1.0, peer: bool = False, note: str = "", rounds: int | None = None,
            warmup_rounds: int = 1, self_timed: bool = False) -> Any:
        target = fn if peer else slowed(fn, factor)
        timed: list[float] = []
        if self_timed:
            inner = target

            def target():
                seconds, value = inner()
                timed.append(float(seconds))
                return value

        first = None
        for _ in range(warmup_rounds):  # warm-up (JIT loading, caches); also sizes the rounds
            start = clock()
            target()
            first = clock() - start
        iterations = 1
        if first is not None and first < MIN_ROUND_S:
            iterations = min(MAX_ITERATIONS, math.ceil(MIN_ROUND_S / max(first, 1e-6)))
        before = measure_calibration(CALIBRATION_AROUND, clock)
        benchmark.group = case.name
        result = benchmark.pedantic(target, rounds=rounds or ROUNDS[size], iterations=iterations)
        after = measure_calibration(CALIBRATION_AROUND, clock)
        benchmark.extra_info.update({
            "case": case.name,
            "phase": case.phase,
            "implementation": implementation,
            "peer": bool(peer),
            "size": size,
            "params": case.params(size),
            "units": float(units),
            "unit": unit,
            "scale": float(scale),
            "note": note,
            "calibration_s": min(before, after),
            "clock": clock_name,
            "calibration_version": CALIBRATION_VERSION,
            "slowdown": 1 if peer else factor,
            "iterations": iterations,
            "numba_threads": _numba_threads(),
        })
        if self_timed:
            benchmark.extra_info["timed_s"] = timed[warmup_rounds:]
        return result

    return run


def _numba_threads() -> int:
    import numba

    return int(numba.get_num_threads())
