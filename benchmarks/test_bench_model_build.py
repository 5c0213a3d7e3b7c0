"""Offer-model build: NumPy preparation + Pyomo model + hand-off to HiGHS, next to the floor.

gridflex's figure is `optimizer.model.build_model` followed by `optimizer.handoff.to_highs`
(the model loaded in HiGHS, ready to solve). The peer is the same model passed to ``highspy``
directly from sparse matrices, as built by the optimizer's own benchmark module
(`benchmarks/bench_optimizer.py`); the issue's target is gridflex ≤ 5× that floor.
"""

from __future__ import annotations

import pytest

SEED = 3


def _problem(p: dict):
    from optimizer.synthetic import synthetic_problem

    return synthetic_problem(p["customers"], p["offers"], p["steps"], seed=SEED,
                             budget_eur=20.0 * p["customers"], satisfaction_floor_mean=0.6)


@pytest.fixture(scope="module")
def problems(size: str):
    cache: dict[str, object] = {}

    def get(case):
        if case.name not in cache:
            cache[case.name] = _problem(case.params(size))
        return cache[case.name]

    return get


@pytest.mark.cases("model_build")
def test_build_gridflex(measure, benchmark, size, case, problems):
    from optimizer.handoff import to_highs
    from optimizer.model import build_model

    problem = problems(case)

    def build():
        return to_highs(build_model(problem))

    hm = measure(case, "gridflex", build, units=problem.shape[0], unit="customers")
    benchmark.extra_info.update({"rows": hm.n_rows, "columns": hm.n_cols, "nonzeros": hm.nnz})
    assert hm.n_cols > problem.shape[0]


@pytest.mark.peer
@pytest.mark.cases("model_build")
def test_build_highspy_direct(measure, benchmark, size, case, problems):
    bench_optimizer = pytest.importorskip(
        "benchmarks.bench_optimizer", reason="benchmarks/bench_optimizer.py (the optimizer's "
        "benchmark module with the direct-highspy builder) is not there yet")
    build_direct = getattr(bench_optimizer, "build_direct_highspy", None)
    if build_direct is None:
        pytest.skip("benchmarks/bench_optimizer.py has no build_direct_highspy(problem)")
    problem = problems(case)
    measure(case, "highspy direct", lambda: build_direct(problem), units=problem.shape[0],
            unit="customers", peer=True)
