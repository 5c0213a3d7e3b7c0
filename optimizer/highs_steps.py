"""The HiGHS steps every offer-solve method shares: LP relaxation, MIP run, choice read-out and
the packaged `OfferSolution`.

`optimizer.solve` dispatches to its methods (`optimizer.cluster`, `optimizer.lagrange_fix`, its
own MIP and LP-fix), and they all call down to these, so no method imports the dispatcher.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np

from optimizer.assignment import evaluate_assignment
from optimizer.handoff import HighsModel, run_with_deadline, status_text
from scenarios.errors import SolverError
from scenarios.schema import SolverConfig

#: Above this many nonzeros the LP relaxation uses interior point + crossover (SOLVER.md:
#: 1.7–2× faster than dual simplex at 10k customers, the only one finishing at 100k).
IPM_MIN_NONZEROS = 300_000
#: Denominator floor of the relative gap [EUR].
GAP_FLOOR_EUR = 1.0

_INFEASIBLE = {highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible}


@dataclass(frozen=True)
class OfferSolution:
    """The chosen offer per customer and how it was obtained.

    ``objective`` is the assignment's value evaluated on all design steps [EUR per season];
    ``bound`` an upper bound on the optimum [EUR]; ``gap = (bound − objective) /
    max(|objective|, 1 EUR)``. Times in seconds: ``build_s`` NumPy preparation + Pyomo model,
    ``handoff_s`` Pyomo → HiGHS matrices, ``solve_s`` HiGHS and the driver around it.
    """

    choice: np.ndarray   # [n] offer index per customer
    objective: float
    bound: float
    gap: float
    status: str
    method: str
    build_s: float
    handoff_s: float
    solve_s: float
    peak_kw_before: float
    peak_kw_after: float
    incentive_eur: float
    bad_debt_eur: float
    satisfaction_mean: float
    revenue_change_eur: float
    columns: int
    rows: int
    nonzeros: int
    peak_rows: int
    fractional_customers: int = 0
    note: str = ""


def make_solution(
    problem, choice, bound, status, method, *, build_s, handoff_s, solve_s, hm, peak_rows,
    fractional, note=""
) -> OfferSolution:
    """Evaluate ``choice`` on all steps and package it with the solve statistics."""
    values = evaluate_assignment(problem, choice)
    if values.violations:
        raise SolverError("solution breaks a limit: " + "; ".join(values.violations))
    gap = max(bound - values.objective, 0.0) / max(abs(values.objective), GAP_FLOOR_EUR)
    return OfferSolution(
        choice=np.asarray(choice, dtype=np.int64),
        objective=values.objective,
        bound=float(bound),
        gap=float(gap),
        status=status,
        method=method,
        build_s=build_s,
        handoff_s=handoff_s,
        solve_s=solve_s,
        peak_kw_before=values.peak_kw_before,
        peak_kw_after=values.peak_kw_after,
        incentive_eur=values.incentive_eur,
        bad_debt_eur=values.bad_debt_eur,
        satisfaction_mean=values.satisfaction_mean,
        revenue_change_eur=values.revenue_change_eur,
        columns=hm.n_cols,
        rows=hm.n_rows,
        nonzeros=hm.nnz,
        peak_rows=peak_rows,
        fractional_customers=fractional,
        note=note,
    )


def choice_from_values(model, x: np.ndarray) -> np.ndarray:
    """Offer per customer from pair values: the pair with the largest x of each customer."""
    pairs = model.pair_data
    best = np.empty(pairs.n_customers, dtype=np.int64)
    # reduceat gives the max per customer; the first pair reaching it is the choice.
    top = np.maximum.reduceat(x, pairs.ptr[:-1])
    hit = np.flatnonzero(x >= top[pairs.customer] - 1e-9)
    first = np.unique(pairs.customer[hit], return_index=True)[1]
    best[:] = pairs.offer[hit[first]]
    return best


def _objective(hm: HighsModel) -> float:
    return hm.sign * hm.highs.getInfo().objective_function_value


def _solve_mip(hm: HighsModel, model, config: SolverConfig, deadline: float,
               stop_below: float | None = None):
    h = hm.highs
    h.setOptionValue("mip_rel_gap", config.mip_gap)
    overran = run_with_deadline(h, deadline, stop_below=stop_below)
    status = h.getModelStatus()
    if status in _INFEASIBLE:
        return None, np.nan, "infeasible", 0
    info = h.getInfo()
    if info.primal_solution_status != 2:  # 2 = kSolutionStatusFeasible
        return None, np.nan, status_text(h, status), 0
    x = np.asarray(h.getSolution().col_value)[hm.x_col]
    bound = hm.sign * info.mip_dual_bound
    label = "optimal" if status == highspy.HighsModelStatus.kOptimal else "time limit"
    if overran:
        label = "time limit (cancelled by the driver)"
    return choice_from_values(model, x), bound, label, 0


def solve_relaxation(hm: HighsModel, deadline: float) -> tuple[str, np.ndarray, np.ndarray, float]:
    """Solve the LP relaxation to a vertex; return (status, x, reduced costs of x, bound)."""
    h = hm.highs
    h.setOptionValue("solve_relaxation", True)
    if hm.nnz >= IPM_MIN_NONZEROS:
        h.setOptionValue("solver", "ipm")
        h.setOptionValue("run_crossover", "on")
    run_with_deadline(h, deadline)
    h.setOptionValue("solve_relaxation", False)
    h.setOptionValue("solver", "choose")
    status = h.getModelStatus()
    if status in _INFEASIBLE:
        return "infeasible", np.empty(0), np.empty(0), np.nan
    if status != highspy.HighsModelStatus.kOptimal:
        return status_text(h, status), np.empty(0), np.empty(0), np.nan
    sol = h.getSolution()
    x = np.asarray(sol.col_value)[hm.x_col]
    reduced = np.asarray(sol.col_dual)[hm.x_col]
    return "optimal", x, reduced, _objective(hm)
