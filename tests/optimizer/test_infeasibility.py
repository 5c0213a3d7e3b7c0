"""Explained infeasibility: limits no assignment meets alone (against brute force), and the
elastic explanation on the LP path (more than `EXACT_MAX_CUSTOMERS` customers)."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import numpy as np
import pytest

from optimizer import infeasibility
from optimizer.assignment import network_flows
from optimizer.handoff import to_highs
from optimizer.model import ModelOptions, build_model
from optimizer.solve import solve_offers
from optimizer.synthetic import synthetic_problem
from scenarios.errors import InfeasibleError
from scenarios.schema import SolverConfig
from tests.optimizer.conftest import make_tiny_problem

CONFIG = SolverConfig(time_limit_s=60, mip_gap=1e-3, threads=1)


@pytest.fixture(scope="module")
def infeasible_problem():
    # The transformers must shed load, which costs incentives, within a 50 EUR budget: each
    # limit alone can be met, the two together cannot.
    problem = synthetic_problem(infeasibility.EXACT_MAX_CUSTOMERS + 100, offers=8, steps=24,
                                seed=3, trafos=2, lines=2, budget_eur=50.0)
    assert problem.shape[0] > infeasibility.EXACT_MAX_CUSTOMERS
    assert not infeasibility.single_limit_conflicts(problem)
    return problem


def test_lp_estimate_names_the_conflict(infeasible_problem):
    with pytest.raises(InfeasibleError) as err:
        solve_offers(infeasible_problem, CONFIG)
    message = str(err.value)
    assert message.startswith("infeasible (LP estimate): transformer limit (trafo 0) short by")
    assert "budget_eur" in message and "\n" not in message


def test_warm_re_solves_equal_cold_ones(infeasible_problem):
    # Each family's "relax only this" LP, from the basis of the first elastic solve (dual
    # simplex) and from scratch (interior point + crossover): the same slacks.
    hm = to_highs(build_model(infeasible_problem, ModelOptions(elastic=True)))
    names = list(hm.slack_col)
    deadline = time.perf_counter() + 60
    assert infeasibility._solve(hm, names, False, deadline)
    families = list(dict.fromkeys(infeasibility._group(s) for s in names))
    assert len(families) >= 3
    warm = {f: infeasibility._solve(hm, [s for s in names if infeasibility._group(s) == f],
                                    False, deadline, warm=True) for f in families}
    cold_hm = to_highs(build_model(infeasible_problem, ModelOptions(elastic=True)))
    for family, got in warm.items():
        want = infeasibility._solve(cold_hm, [s for s in names if infeasibility._group(s) == family],
                                    False, deadline)
        assert (got is None) == (want is None), family
        if want:
            np.testing.assert_allclose([got[s] for s in names], [want[s] for s in names],
                                       rtol=1e-6, atol=1e-7)


def _alone_by_brute_force(problem, cap: float) -> dict[str, float]:
    """Each limit that every assignment breaks, with the smallest amount any assignment breaks
    it by (per-step limits: the largest such amount over steps and sides)."""
    n, _, _ = problem.shape
    shortfall: dict[str, np.ndarray] = {}

    def keep(name, value):
        shortfall[name] = value if name not in shortfall else np.minimum(shortfall[name], value)

    for combo in itertools.product(*[np.flatnonzero(problem.eligible[i]) for i in range(n)]):
        choice = np.asarray(combo)
        pick = (np.arange(n), choice)
        change = problem.delta_kw[pick]                                 # [n, t]
        keep("peak_cap", problem.base_kw + change.sum(axis=0) - cap)
        keep("budget", np.array(problem.incentive_eur[pick].sum() - problem.budget_eur))
        keep("satisfaction_mean",
             np.array(problem.satisfaction_floor_mean - problem.satisfaction[pick].mean()))
        revenue = problem.revenue_change_eur[pick].sum()
        keep("revenue_up", np.array(revenue - problem.revenue_band_eur))
        keep("revenue_down", np.array(-problem.revenue_band_eur - revenue))
        for family, flows, lower, upper in network_flows(problem, choice, change):
            for e in range(flows.shape[1]):
                keep(f"{family}:{e}", np.concatenate([flows[:, e] - upper[e],
                                                      lower[e] - flows[:, e]]))
    return {name: float(v.max()) for name, v in shortfall.items() if v.max() > 1e-9}


@pytest.mark.parametrize("seed", range(30))
def test_single_limit_conflicts_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    problem = make_tiny_problem(
        seed, n=4, k=3, t=4, trafo=True, line=True,
        trafo_limit_share=rng.uniform(0.75, 1.0),
        budget_eur=rng.uniform(0.0, 30.0),
        satisfaction_floor_mean=rng.uniform(0.6, 0.95),
        revenue_band_eur=rng.uniform(0.0, 8.0),
    )
    problem = replace(problem, line_limit_kw=problem.line_limit_kw * rng.uniform(0.8, 1.0))
    cap = float(problem.base_kw.max()) - rng.uniform(0.0, 2.5)
    want = _alone_by_brute_force(problem, cap)
    got = infeasibility.single_limit_conflicts(problem, cap)
    assert set(got) == set(want)
    for name, amount in want.items():
        assert got[name] == pytest.approx(amount, rel=1e-9, abs=1e-9), name


def test_single_limit_conflicts_seen_by_the_brute_force_cases():
    # The random cases above must include conflicts of every kind, or they test little.
    kinds = set()
    for seed in range(30):
        rng = np.random.default_rng(seed)
        problem = make_tiny_problem(
            seed, n=4, k=3, t=4, trafo=True, line=True, trafo_limit_share=rng.uniform(0.75, 1.0),
            budget_eur=rng.uniform(0.0, 30.0), satisfaction_floor_mean=rng.uniform(0.6, 0.95),
            revenue_band_eur=rng.uniform(0.0, 8.0))
        problem = replace(problem, line_limit_kw=problem.line_limit_kw * rng.uniform(0.8, 1.0))
        cap = float(problem.base_kw.max()) - rng.uniform(0.0, 2.5)
        kinds |= {name.partition(":")[0] for name in _alone_by_brute_force(problem, cap)}
    assert {"peak_cap", "satisfaction_mean", "trafo", "line"} <= kinds, kinds


def test_utility_scale_floor_conflict_is_named_without_a_solve():
    problem = synthetic_problem(20_000, offers=10, steps=48, seed=2, trafos=3, lines=2,
                                satisfaction_floor_mean=0.99)
    with pytest.raises(InfeasibleError) as err:
        solve_offers(problem, CONFIG, method="lagrange-fix")
    message = str(err.value)
    assert message.startswith("infeasible: satisfaction_floor_mean cannot be met"), message
    best = problem.satisfaction.max(axis=1, where=problem.eligible, initial=0.0).mean()
    assert f"short by {0.99 - best:.4g}" in message
