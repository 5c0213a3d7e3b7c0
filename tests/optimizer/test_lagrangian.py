"""The Lagrangian bound: equal to the LP bound at LP prices, above the optimum at any prices."""

from __future__ import annotations

import time

import numpy as np
import pytest

from optimizer.handoff import to_highs
from optimizer.lagrangian import RowPrices, lagrangian_bound, row_prices
from optimizer.model import build_model
from optimizer.solve import solve_offers, solve_relaxation
from optimizer.synthetic import synthetic_problem
from scenarios.schema import SolverConfig

#: Agreement of the Lagrangian value at the LP's own duals with the LP optimum (relative).
LP_BOUND_RTOL = 1e-7


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_lp_bound_at_lp_prices(tiny_problem, seed):
    problem = tiny_problem(seed, n=10, k=4, t=8, budget_eur=30.0, satisfaction_floor_mean=0.6,
                           revenue_band_eur=5.0, trafo=True, line=True)
    hm = to_highs(build_model(problem))
    status, _, _, bound = solve_relaxation(hm, time.perf_counter() + 60)
    assert status == "optimal"
    assert lagrangian_bound(problem, row_prices(hm)) == pytest.approx(bound, rel=LP_BOUND_RTOL)


def test_equals_lp_bound_with_incidence_networks():
    problem = synthetic_problem(200, offers=8, steps=48, seed=2, trafos=3, lines=3, budget_eur=1500.0)
    hm = to_highs(build_model(problem))
    status, _, _, bound = solve_relaxation(hm, time.perf_counter() + 60)
    assert status == "optimal"
    assert lagrangian_bound(problem, row_prices(hm)) == pytest.approx(bound, rel=LP_BOUND_RTOL)


@pytest.mark.parametrize("seed", range(5))
def test_any_prices_bound_the_optimum(tiny_problem, seed):
    problem = tiny_problem(seed, budget_eur=25.0, satisfaction_floor_mean=0.6)
    optimum = solve_offers(problem, SolverConfig(mip_gap=0.0), method="mip").objective
    rng = np.random.default_rng(seed)
    prices = RowPrices(
        peak={t: -float(rng.uniform(0, 60)) for t in range(problem.shape[2])},
        scalar={"budget": -float(rng.uniform(0, 2)), "satisfaction_mean": float(rng.uniform(0, 50))},
    )
    assert lagrangian_bound(problem, prices) >= optimum - 1e-9
