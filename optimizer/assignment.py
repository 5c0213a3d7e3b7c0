"""Evaluate one offer per customer on every design step: the single source of solution values.

Whatever method produced the assignment (full MIP, LP-fix, clusters, a pruned set of peak
rows), its objective, peak and limit checks are recomputed here from the problem's arrays on
all steps, so reported numbers never depend on model shortcuts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimizer.problem import OfferProblem

#: Tolerance for calling a limit violated [kW, EUR, p.u. or satisfaction units].
LIMIT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class AssignmentValues:
    """KPIs of an assignment (maximisation objective in EUR per season)."""

    objective: float
    peak_kw_before: float
    peak_kw_after: float
    incentive_eur: float
    bad_debt_eur: float
    satisfaction_mean: float
    revenue_change_eur: float
    load_kw: np.ndarray          # [t] expected feeder load after offers
    violations: tuple[str, ...]  # one line per violated limit


def assignment_load(problem: OfferProblem, choice: np.ndarray) -> np.ndarray:
    """Per-customer expected load change of the chosen offers [n, t] [kW]."""
    n = problem.shape[0]
    return problem.delta_kw[np.arange(n), choice]


def evaluate_assignment(problem: OfferProblem, choice: np.ndarray) -> AssignmentValues:
    """Objective, KPIs and limit violations of ``choice`` ([n] offer index per customer)."""
    choice = np.asarray(choice, dtype=np.int64)
    n = problem.shape[0]
    rows = np.arange(n)
    change = assignment_load(problem, choice)          # [n, t]
    load = problem.base_kw + change.sum(axis=0)
    peak_before = float(np.max(problem.base_kw))
    peak_after = float(load.max())
    incentive = float(problem.incentive_eur[rows, choice].sum())
    bad_debt = float(problem.bad_debt_eur[rows, choice].sum())
    satisfaction = float(problem.satisfaction[rows, choice].mean())
    revenue = float(problem.revenue_change_eur[rows, choice].sum())
    objective = (
        problem.peak_value_eur_per_kw * (peak_before - peak_after)
        - problem.incentive_weight * incentive
        - problem.bad_debt_weight * bad_debt
        + problem.satisfaction_value_eur * satisfaction
    )
    return AssignmentValues(
        objective=float(objective),
        peak_kw_before=peak_before,
        peak_kw_after=peak_after,
        incentive_eur=incentive,
        bad_debt_eur=bad_debt,
        satisfaction_mean=satisfaction,
        revenue_change_eur=revenue,
        load_kw=load,
        violations=tuple(_violations(problem, choice, change, incentive, satisfaction, revenue)),
    )


def _violations(problem, choice, change, incentive, satisfaction, revenue):
    tol = LIMIT_TOLERANCE
    n = problem.shape[0]
    if not problem.eligible[np.arange(n), choice].all():
        yield "an ineligible offer was chosen"
    if incentive > problem.budget_eur + tol * max(1.0, problem.budget_eur):
        yield f"budget_eur: incentives {incentive:.2f} > {problem.budget_eur:.2f} EUR"
    if satisfaction < problem.satisfaction_floor_mean - tol:
        yield f"satisfaction_floor_mean: {satisfaction:.4f} < {problem.satisfaction_floor_mean:.4f}"
    worst = problem.satisfaction[np.arange(n), choice].min()
    if worst < problem.satisfaction_floor_customer - tol:
        yield f"satisfaction_floor_customer: {worst:.4f} < {problem.satisfaction_floor_customer:.4f}"
    if abs(revenue) > problem.revenue_band_eur + tol * max(1.0, problem.revenue_band_eur):
        yield f"revenue_band_eur: |{revenue:.2f}| > {problem.revenue_band_eur:.2f} EUR"
    for family, flows, lower, upper in network_flows(problem, choice, change):
        over = np.maximum(flows - upper[None, :], lower[None, :] - flows)
        if (over > tol).any():
            step, element = np.unravel_index(int(np.argmax(over)), over.shape)
            yield f"{family} {element} at step {step}: beyond its limit by {over.max():.4g}"


def network_flows(problem: OfferProblem, choice: np.ndarray, change: np.ndarray):
    """Yield (family, value[t, e], lower[e], upper[e]) for each network family present."""
    if problem.trafo_limit_kw is not None:
        limit = np.asarray(problem.trafo_limit_kw, dtype=float)
        if problem.trafo_delta_kw is not None:
            n = problem.shape[0]
            d = problem.trafo_delta_kw[np.arange(n), choice].sum(axis=0)
        else:
            d = (sp.csr_array(problem.trafo_customer) @ change).T
        yield "trafo", problem.trafo_base_kw + d, np.full(limit.size, -np.inf), limit
    if problem.line_limit_kw is not None:
        limit = np.asarray(problem.line_limit_kw, dtype=float)
        d = (sp.csr_array(problem.line_customer) @ change).T
        yield "line", problem.line_base_kw + d, -limit, limit
    if problem.voltage_sensitivity_pu_per_kw is not None:
        d = (sp.csr_array(problem.voltage_sensitivity_pu_per_kw) @ change).T
        nb = d.shape[1]
        yield (
            "voltage",
            problem.voltage_base_pu + d,
            np.full(nb, problem.voltage_min_pu),
            np.full(nb, problem.voltage_max_pu),
        )
