"""ε-constraint Pareto fronts against exhaustive search, and the plot."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from optimizer.assignment import evaluate_assignment
from optimizer.pareto import pareto_front, plot_pareto
from optimizer.synthetic import synthetic_problem
from scenarios.schema import SolverConfig
from sim.dataset import validate

CONFIG = SolverConfig(time_limit_s=60.0, mip_gap=0.0)
#: Peak-reduction agreement with exhaustive search [kW].
REDUCTION_ATOL_KW = 1e-6


def best_reduction(problem, against: str, eps: float) -> float:
    """Largest peak reduction over all feasible assignments meeting the ε limit (reference)."""
    n = problem.shape[0]
    best = -np.inf
    for combo in itertools.product(*[np.flatnonzero(problem.eligible[i]) for i in range(n)]):
        values = evaluate_assignment(problem, np.array(combo))
        cost = problem.incentive_weight * values.incentive_eur + problem.bad_debt_weight * values.bad_debt_eur
        if values.violations:
            continue
        if against == "satisfaction" and values.satisfaction_mean < eps - 1e-9:
            continue
        if against == "cost" and cost > eps + 1e-6:
            continue
        best = max(best, values.peak_kw_before - values.peak_kw_after)
    return best


@pytest.mark.parametrize("against", ["satisfaction", "cost"])
@pytest.mark.parametrize("seed", [0, 1])
def test_front_matches_exhaustive_search(tiny_problem, against, seed):
    problem = tiny_problem(seed)
    front = pareto_front(problem, CONFIG, against=against, points=4)
    validate(front)
    for j in range(front.sizes["point"]):
        eps = float(front["epsilon"][j])
        expected = best_reduction(problem, against, eps)
        assert bool(front["feasible"][j]) == np.isfinite(expected)
        if np.isfinite(expected):
            assert float(front["peak_reduction_kw"][j]) == pytest.approx(expected, abs=REDUCTION_ATOL_KW)


def test_front_is_monotone_and_respects_epsilon(tmp_path):
    problem = synthetic_problem(80, offers=6, steps=24, seed=2)
    front = pareto_front(problem, CONFIG, against="satisfaction", points=5)
    ok = front["feasible"].values
    assert ok.all()
    reduction = front["peak_reduction_kw"].values
    assert np.all(np.diff(reduction) <= 1e-6)                       # tighter ε, less reduction
    assert np.all(front["satisfaction_mean"].values >= front["epsilon"].values - 1e-9)
    png = plot_pareto(front, tmp_path / "front.png")
    assert png.stat().st_size > 1000


def test_cost_front_spends_less_as_epsilon_falls():
    problem = synthetic_problem(80, offers=6, steps=24, seed=3)
    front = pareto_front(problem, CONFIG, against="cost", points=4)
    cost = front["cost_eur"].values
    assert np.all(cost <= front["epsilon"].values + 1e-6)
    assert np.all(np.diff(front["peak_reduction_kw"].values) <= 1e-6)
    assert front["peak_reduction_kw"].values[-1] >= 0.0
