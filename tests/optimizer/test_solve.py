"""The Pyomo/HiGHS offer optimizer against exhaustive search and an independent highspy build."""

from __future__ import annotations

import itertools
from dataclasses import replace

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

from optimizer.assignment import evaluate_assignment
from optimizer.solve import solve_offers
from optimizer.synthetic import synthetic_problem
from scenarios.errors import InfeasibleError, InputError
from scenarios.schema import SolverConfig

#: Objective agreement between independent solves of the same problem (relative).
OBJECTIVE_RTOL = 1e-6
CONFIG = SolverConfig(time_limit_s=60.0, mip_gap=0.0, threads=1)


def exhaustive_optimum(problem) -> tuple[float, np.ndarray | None]:
    """Best feasible objective over every combination of eligible offers (∞-slow reference)."""
    n, k, _ = problem.shape
    options = [np.flatnonzero(problem.eligible[i]) for i in range(n)]
    best, arg = -np.inf, None
    for combo in itertools.product(*options):
        choice = np.array(combo)
        values = evaluate_assignment(problem, choice)
        if values.violations:
            continue
        if values.objective > best:
            best, arg = values.objective, choice
    return best, arg


CASES = {
    "plain": {},
    "budget": {"budget_eur": 25.0},
    "satisfaction": {"satisfaction_floor_mean": 0.7, "satisfaction_floor_customer": 0.45},
    "revenue": {"revenue_band_eur": 4.0},
    "trafo+line": {"trafo": True, "line": True},
}


@pytest.mark.parametrize("method", ["mip", "lp-fix", "lagrange-fix"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_exhaustive_search(tiny_problem, case, seed, method):
    problem = tiny_problem(seed, **CASES[case])
    best, _ = exhaustive_optimum(problem)
    if not np.isfinite(best):
        with pytest.raises(InfeasibleError):
            solve_offers(problem, CONFIG, method=method)
        return
    solution = solve_offers(problem, CONFIG, method=method)
    assert solution.objective == pytest.approx(best, rel=OBJECTIVE_RTOL, abs=1e-6)
    assert solution.bound >= solution.objective - 1e-6
    assert not evaluate_assignment(problem, solution.choice).violations


def test_larger_exhaustive_case(tiny_problem):
    problem = tiny_problem(7, n=6, k=4, t=8, budget_eur=40.0, trafo=True)
    best, _ = exhaustive_optimum(problem)
    solution = solve_offers(problem, CONFIG, method="mip")
    assert solution.objective == pytest.approx(best, rel=OBJECTIVE_RTOL, abs=1e-6)


def direct_highspy_objective(problem) -> float:
    """The same MILP written straight from the problem arrays with highspy, no pruning.

    Columns: x[i,k] for every pair (ineligible or below the customer floor fixed to 0), then
    the peak. Minimises −objective.
    """
    n, k, t = problem.shape
    allowed = problem.eligible & (problem.satisfaction >= problem.satisfaction_floor_customer)
    nx = n * k
    V = problem.peak_value_eur_per_kw
    cost = (
        problem.incentive_weight * problem.incentive_eur
        + problem.bad_debt_weight * problem.bad_debt_eur
        - problem.satisfaction_value_eur * problem.satisfaction / n
    ).ravel()
    c = np.append(cost, V)
    lower = np.zeros(nx + 1)
    upper = np.append(allowed.ravel().astype(float), np.inf)
    lower[-1] = -np.inf
    rows, lo, hi = [], [], []
    one = sp.kron(sp.eye(n), np.ones((1, k)))
    rows.append(sp.hstack([one, sp.csr_matrix((n, 1))]))
    lo += [1.0] * n
    hi += [1.0] * n
    d = problem.delta_kw.reshape(nx, t).T
    rows.append(sp.hstack([sp.csr_matrix(d), -np.ones((t, 1))]))
    lo += [-np.inf] * t
    hi += list(-problem.base_kw)
    def add(vec, a, b):
        rows.append(sp.csr_matrix(np.append(vec, 0.0)[None, :]))
        lo.append(a)
        hi.append(b)
    if np.isfinite(problem.budget_eur):
        add(problem.incentive_eur.ravel(), -np.inf, problem.budget_eur)
    add(problem.satisfaction.ravel(), n * problem.satisfaction_floor_mean, np.inf)
    if np.isfinite(problem.revenue_band_eur):
        add(problem.revenue_change_eur.ravel(), -problem.revenue_band_eur, problem.revenue_band_eur)
    if problem.trafo_limit_kw is not None:
        for r, limit in enumerate(problem.trafo_limit_kw):
            for s in range(t):
                add(problem.trafo_delta_kw[:, :, s, r].ravel(), -np.inf, limit - problem.trafo_base_kw[s, r])
    if problem.line_limit_kw is not None:
        inc = sp.csr_array(problem.line_customer).toarray()
        for e, limit in enumerate(problem.line_limit_kw):
            for s in range(t):
                coef = (inc[e][:, None] * problem.delta_kw[:, :, s]).ravel()
                base = problem.line_base_kw[s, e]
                add(coef, -limit - base, limit - base)
    A = sp.vstack(rows).tocsc()
    h = highspy.Highs()
    h.silent()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = nx + 1, A.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = c, lower, upper
    lp.row_lower_, lp.row_upper_ = np.array(lo), np.array(hi)
    lp.offset_ = -V * float(problem.base_kw.max())
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
    lp.integrality_ = [highspy.HighsVarType.kInteger] * nx + [highspy.HighsVarType.kContinuous]
    h.passModel(lp)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return -h.getInfo().objective_function_value


@pytest.mark.parametrize("case", list(CASES))
def test_matches_direct_highspy_build(tiny_problem, case):
    problem = tiny_problem(11, n=12, k=4, t=10, **CASES[case])
    try:
        expected = direct_highspy_objective(problem)
    except AssertionError:
        pytest.skip("instance infeasible for this case")
    solution = solve_offers(problem, CONFIG, method="mip")
    assert solution.objective == pytest.approx(expected, rel=OBJECTIVE_RTOL)


def test_synthetic_matches_direct_highspy_build():
    problem = synthetic_problem(60, offers=8, steps=48, seed=3, trafos=2, trafo_dense=True)
    expected = direct_highspy_objective(problem)
    solution = solve_offers(problem, CONFIG, method="mip")
    assert solution.objective == pytest.approx(expected, rel=OBJECTIVE_RTOL)
    assert solution.peak_kw_after < solution.peak_kw_before


def test_exported_mps_resolves_to_same_objective(tmp_path):
    problem = synthetic_problem(40, offers=6, steps=24, seed=5, budget_eur=200.0)
    path = tmp_path / "model.mps"
    solution = solve_offers(problem, CONFIG, export_mps=path, method="mip")
    h = highspy.Highs()
    h.silent()
    h.readModel(str(path))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    # The file minimises −objective.
    assert -h.getInfo().objective_function_value == pytest.approx(solution.objective, rel=OBJECTIVE_RTOL)


def test_export_rejects_unknown_suffix(tmp_path, tiny_problem):
    with pytest.raises(InputError, match="must end in .mps"):
        solve_offers(tiny_problem(0), CONFIG, export_mps=tmp_path / "model.txt")


def test_lp_fix_gap_is_certified_against_the_exact_mip():
    problem = synthetic_problem(150, offers=8, steps=48, seed=4, trafos=2)
    config = SolverConfig(time_limit_s=60, mip_gap=1e-3)
    heuristic = solve_offers(problem, config, method="lp-fix")
    exact = solve_offers(problem, SolverConfig(time_limit_s=60, mip_gap=1e-6), method="mip")
    assert heuristic.bound >= exact.objective - 1e-6
    assert heuristic.objective <= exact.objective + 1e-6
    assert exact.objective - heuristic.objective <= heuristic.gap * max(abs(heuristic.objective), 1.0) + 1e-6
    assert not evaluate_assignment(problem, heuristic.choice).violations


def test_infeasible_budget_names_the_conflict(tiny_problem):
    # The transformer must shed load, which costs incentives; no budget at all.
    problem = tiny_problem(3, trafo=True, trafo_limit_share=0.9)
    problem = replace(problem, budget_eur=0.0)
    with pytest.raises(InfeasibleError) as err:
        solve_offers(problem, CONFIG)
    message = str(err.value)
    assert "budget_eur" in message and "transformer" in message
    assert "\n" not in message


def test_infeasible_satisfaction_floor_names_it(tiny_problem):
    problem = tiny_problem(4, satisfaction_floor_mean=0.99)
    with pytest.raises(InfeasibleError, match="satisfaction_floor_mean"):
        solve_offers(problem, CONFIG)


def test_customer_floor_without_offer_names_customers(tiny_problem):
    problem = tiny_problem(5, satisfaction_floor_customer=0.999)
    with pytest.raises(InfeasibleError, match="satisfaction_floor_customer .* customer"):
        solve_offers(problem, CONFIG)


def test_bad_shapes_are_input_errors(tiny_problem):
    problem = tiny_problem(0)
    with pytest.raises(InputError, match="satisfaction"):
        solve_offers(replace(problem, satisfaction=problem.satisfaction[:, :2]), CONFIG)


def test_solution_dataset_is_labelled_and_valid(tiny_problem):
    from optimizer.solve import solution_dataset
    from sim.dataset import validate

    problem = tiny_problem(0)
    solution = solve_offers(problem, CONFIG)
    ds = validate(solution_dataset(problem, solution), {"offer": ("customer",)})
    assert (ds["offer"].values == solution.choice).all()
    assert ds["customer"].values.tolist() == problem.customer_ids.tolist()
    assert float(ds["peak_kw_after_expected"]) == solution.peak_kw_after
    assert float(ds["objective_eur"]) == solution.objective
