"""Lagrange-fix: the dual bound without the big LP, then a small sub-MIP around the ambiguous customers.

1. Maximise the Lagrangian dual over the few coupling rows (`optimizer.lagrange_dual`); its
   value ``g(λ*)`` is a certified upper bound (weak duality, valid for any ``λ ≥ 0``), equal to
   the LP relaxation's bound at convergence.
2. Fix every customer to its best offer under ``λ*``, except those whose best offer wins by
   the smallest reduced-value margin; solve the MIP over those free customers with all coupling
   rows, the fixed customers' loads, incentives and flows moved into the limits (a
   relaxation-induced neighbourhood: Danna, Rothberg & Le Pape, Math. Prog. 102 (2005)).
   Widen the free set while the sub-MIP is infeasible or the gap to ``g(λ*)`` is above target.
3. Lazy peak rows: the dual and the sub-MIP carry epigraph rows only for candidate steps (base
   load above the reachable lower bound of the peak); when the assignment's load at an omitted
   step exceeds the modelled peak, that step's row is added and both are solved again.

The assignment is evaluated on all design steps (`optimizer.assignment`) and the gap reported
against ``g(λ*)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from pyomo.common.errors import InfeasibleConstraintException

from optimizer.assignment import evaluate_assignment
from optimizer.infeasibility import (
    describe_single_limit_conflicts,
    explain_infeasibility,
    single_limit_conflicts,
)
from optimizer.lagrange_dual import coupling_rows, maximise_dual
from optimizer.problem import OfferProblem
from scenarios.errors import InfeasibleError, SolverError
from scenarios.schema import SolverConfig

#: Free customers in the first sub-MIP beyond one per coupling row.
FIRST_FREE = 40
#: Widening stops at this many free customers once an assignment is found.
MAX_FREE = 4000
#: Up to this many customers, a first neighbourhood that misses the gap is followed by the
#: whole MIP at once.
DIRECT_FULL_MIP_CUSTOMERS = 2500
#: Largest problem whose whole MIP is tried, from the incumbent, when neighbourhoods stall, and
#: the time that must be left for it: HiGHS does not check its time limit in root-node
#: heuristics (SOLVER.md); a whole 10k-customer MIP asked for 60 s ran 245 s here.
WHOLE_MIP_MAX_CUSTOMERS = 5000
WHOLE_MIP_MIN_TIME_S = 20.0
#: Share of the MIP gap given to the dual's convergence (the rest to the sub-MIP).
DUAL_GAP_SHARE = 0.02
#: Rounds of lazily re-added peak rows before all remaining candidates are added at once.
MAX_LAZY_ROUNDS = 4
#: Widening stops when a 4× wider neighbourhood gains less than this share of the gap target.
STALL_GAIN = 0.1
#: Share of the gap target the sub-MIP's incumbent must reach before it is stopped early.
TARGET_SHARE = 0.5
#: Row feasibility tolerance of the sub-MIPs [row units].
SUB_MIP_FEASIBILITY_TOLERANCE = 1e-9
#: Load above the modelled peak that counts as exceeding it [kW].
LAZY_TOLERANCE_KW = 1e-6


@dataclass
class LagrangeFixStats:
    """What the run did, for the solution's note and the benchmark."""

    prep_s: float = 0.0          # NumPy preparation of the coupling rows [s]
    dual_s: float = 0.0          # column generation [s]
    sub_build_s: float = 0.0     # sub-MIP model build [s]
    sub_handoff_s: float = 0.0   # sub-MIP hand-off [s]
    sub_solve_s: float = 0.0     # sub-MIP HiGHS [s]
    iterations: int = 0
    dual_status: str = ""
    peak_rows: int = 0
    lazy_added: int = 0
    free: int = 0
    sub_rows: int = 0
    sub_cols: int = 0
    sub_nnz: int = 0


def restricted_problem(
    problem: OfferProblem, free: np.ndarray, choice: np.ndarray
) -> tuple[OfferProblem, float]:
    """The problem over customers ``free`` with everyone else fixed to ``choice``.

    The fixed customers' load changes go into the base load and the network base flows, their
    incentives into the budget, their satisfaction into the mean floor, their revenue change
    into the band (spread over the free customers' revenue so the band stays symmetric). The
    satisfaction value is rescaled so that the sub-problem's objective differs from the full
    one's by a constant, returned second: full objective = sub objective + offset [EUR] for
    every completion of the fixed choices.
    """
    n = problem.shape[0]
    free = np.sort(np.asarray(free, dtype=np.int64))
    fixed = np.setdiff1d(np.arange(n), free)
    f = free.size
    fc = choice[fixed]
    dfix = problem.delta_kw[fixed, fc]                           # [n_fixed, t]
    fields: dict = {}
    revenue = np.asarray(problem.revenue_change_eur, dtype=float)[free]
    if np.isfinite(problem.revenue_band_eur):
        revenue = revenue + float(problem.revenue_change_eur[fixed, fc].sum()) / f
    if problem.trafo_limit_kw is not None:
        if problem.trafo_delta_kw is not None:
            fields["trafo_delta_kw"] = problem.trafo_delta_kw[free]
            fields["trafo_base_kw"] = problem.trafo_base_kw + problem.trafo_delta_kw[fixed, fc].sum(0)
        else:
            w = sp.csc_array(problem.trafo_customer, dtype=float)
            fields["trafo_customer"] = w[:, free]
            fields["trafo_base_kw"] = problem.trafo_base_kw + (w[:, fixed] @ dfix).T
    if problem.line_limit_kw is not None:
        w = sp.csc_array(problem.line_customer, dtype=float)
        fields["line_customer"] = w[:, free]
        fields["line_base_kw"] = problem.line_base_kw + (w[:, fixed] @ dfix).T
    if problem.voltage_sensitivity_pu_per_kw is not None:
        w = sp.csc_array(problem.voltage_sensitivity_pu_per_kw, dtype=float)
        fields["voltage_sensitivity_pu_per_kw"] = w[:, free]
        fields["voltage_base_pu"] = problem.voltage_base_pu + (w[:, fixed] @ dfix).T
    for name in ("customer_tier", "customer_segment"):
        if getattr(problem, name) is not None:
            fields[name] = getattr(problem, name)[free]
    base_sub = problem.base_kw + dfix.sum(axis=0)
    offset = (
        problem.peak_value_eur_per_kw * (float(np.max(problem.base_kw)) - float(base_sub.max()))
        - problem.incentive_weight * float(problem.incentive_eur[fixed, fc].sum())
        - problem.bad_debt_weight * float(problem.bad_debt_eur[fixed, fc].sum())
        + problem.satisfaction_value_eur * float(problem.satisfaction[fixed, fc].sum()) / n
    )
    return replace(
        problem,
        customer_ids=problem.customer_ids[free],
        base_kw=base_sub,
        delta_kw=problem.delta_kw[free],
        acceptance=problem.acceptance[free],
        incentive_eur=problem.incentive_eur[free],
        bill_change_eur=problem.bill_change_eur[free],
        revenue_change_eur=revenue,
        bad_debt_eur=problem.bad_debt_eur[free],
        satisfaction=problem.satisfaction[free],
        eligible=problem.eligible[free],
        satisfaction_value_eur=problem.satisfaction_value_eur * f / n,
        budget_eur=problem.budget_eur - float(problem.incentive_eur[fixed, fc].sum()),
        satisfaction_floor_mean=(n * problem.satisfaction_floor_mean
                                 - float(problem.satisfaction[fixed, fc].sum())) / f,
        **fields,
    ), offset


def pyomo_sub_model(
    problem: OfferProblem, peak_steps: np.ndarray, threads: int, peak_cap_kw: float = np.inf
):
    """The sub-MIP through Pyomo (`optimizer.model`) and the standard-form hand-off.

    Returns (HighsModel, model, build seconds, hand-off seconds).
    """
    from optimizer.handoff import to_highs
    from optimizer.model import ModelOptions, build_model

    t0 = time.perf_counter()
    model = build_model(problem, ModelOptions(peak_steps=peak_steps, peak_cap_kw=peak_cap_kw))
    t1 = time.perf_counter()
    hm = to_highs(model, threads=threads)
    return hm, model, t1 - t0, time.perf_counter() - t1


#: (sub-problem, peak steps, threads, peak cap [kW]) → (HighsModel, model with ``pair_data``,
#: build seconds, hand-off seconds).
SubModelBuilder = Callable[[OfferProblem, np.ndarray, int, float], tuple]


def lagrange_fix(
    problem: OfferProblem,
    config: SolverConfig,
    deadline: float,
    *,
    peak_cap_kw: float = np.inf,
    builder: SubModelBuilder = pyomo_sub_model,
) -> tuple[np.ndarray, float, str, LagrangeFixStats]:
    """Choose one offer per customer by Lagrange-fix (module docstring).

    Returns (choice [n], certified upper bound [EUR], status, statistics).

    Raises
    ------
    InfeasibleError
        The dual proves the LP relaxation infeasible, or no sub-MIP up to the whole problem is
        feasible; the message names the conflicting limits (`optimizer.infeasibility`).
    SolverError
        Nothing feasible found before the deadline.
    """
    stats = LagrangeFixStats()
    t0 = time.perf_counter()
    rows = coupling_rows(problem, peak_cap_kw=peak_cap_kw, candidates_only=True)
    # A limit no assignment meets on its own ends the run at once; the dual would only find
    # it after pricing its row up to the artificial cost, at 100k customers past the deadline.
    alone = single_limit_conflicts(problem, peak_cap_kw, rows)
    if alone:
        raise InfeasibleError(describe_single_limit_conflicts(alone))
    exact, steps = rows.exact_steps, rows.peak_steps
    stats.prep_s += time.perf_counter() - t0
    n = problem.shape[0]
    tolerance = config.mip_gap * DUAL_GAP_SHARE
    lam = None
    best_choice, best_value, bound = None, -np.inf, np.inf
    status = "no sub-MIP solved"
    for lazy_round in range(MAX_LAZY_ROUNDS + 2):
        t1 = time.perf_counter()
        dual = maximise_dual(rows, tolerance=tolerance, deadline=deadline, start=lam,
                             threads=config.threads)
        stats.dual_s += time.perf_counter() - t1
        stats.iterations += dual.iterations
        stats.dual_status = dual.status
        stats.peak_rows = steps.size
        if dual.status == "infeasible":
            _raise_infeasible(problem, config, peak_cap_kw)
        bound = min(bound, dual.best.bound)
        lam_choice = rows.offer[dual.best.pair]
        order = np.argsort(dual.best.margin, kind="stable")
        size = min(n, rows.n_rows + FIRST_FREE)
        round_choice, round_value, sub_status = None, -np.inf, "infeasible"
        while True:
            free = order[:size]
            choice, sub_status, sub_bound = _solve_sub(
                problem, free, lam_choice, steps, config, deadline, builder, stats, bound,
                peak_cap_kw, round_choice)
            bound = min(bound, sub_bound)
            stalled = False
            if choice is not None:
                value = evaluate_assignment(problem, choice)
                previous = round_value
                if not value.violations and value.objective > round_value:
                    round_choice, round_value, round_load = choice, value.objective, value.load_kw
                gap = (bound - round_value) / max(abs(round_value), 1.0)
                if gap <= config.mip_gap:
                    break
                # A 4× wider neighbourhood solved to its optimum without gaining: what is
                # left is the LP bound's own integrality gap, which widening does not close.
                stalled = (sub_status == "optimal" and np.isfinite(previous)
                           and round_value - previous <= STALL_GAIN * config.mip_gap
                           * max(abs(round_value), 1.0))
            if size >= n or time.perf_counter() >= deadline:
                break
            if round_choice is not None and (size >= MAX_FREE or stalled):
                # What is left is the LP bound's own integrality gap: only the whole MIP's
                # bound can certify the target, worth trying (from the incumbent, until the
                # deadline) while the problem is small enough.
                if n > WHOLE_MIP_MAX_CUSTOMERS or deadline - time.perf_counter() < WHOLE_MIP_MIN_TIME_S:
                    break
                size = n
                continue
            # The LP bound of a small population can sit above the integer optimum by more
            # than the target (observed 2e-3 at 1k customers), so small problems skip the
            # intermediate neighbourhoods.
            size = n if n <= DIRECT_FULL_MIP_CUSTOMERS else min(n, 4 * size)
        if round_choice is None:
            if sub_status == "infeasible" and size >= n:
                _raise_infeasible(problem, config, peak_cap_kw)
            if best_choice is not None:
                break
            raise SolverError(f"Lagrange-fix found no assignment ({sub_status}) within "
                              f"{config.time_limit_s:g} s")
        if round_value > best_value:
            best_choice, best_value = round_choice, round_value
        missing = _exceeding_steps(round_load, steps, exact)
        if not missing.size or time.perf_counter() >= deadline:
            break
        if lazy_round >= MAX_LAZY_ROUNDS:
            missing = np.setdiff1d(exact, steps)
        stats.lazy_added += missing.size
        old_labels = rows.row_label + rows.scalar_label
        steps = np.union1d(steps, missing)
        t2 = time.perf_counter()
        rows = coupling_rows(problem, steps, peak_cap_kw=peak_cap_kw)
        stats.prep_s += time.perf_counter() - t2
        lam = _carry_prices(dual.lam, old_labels, rows.row_label + rows.scalar_label)
    gap = (bound - best_value) / max(abs(best_value), 1.0)
    if gap <= config.mip_gap:
        status = "optimal"
    elif time.perf_counter() >= deadline:
        status = "time limit"
    else:
        status = "gap above target"
    return best_choice, bound, status, stats


def _exceeding_steps(load: np.ndarray, steps: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Omitted steps (of the exact set) whose load exceeds the modelled peak."""
    modelled = float(load[steps].max())
    omitted = np.setdiff1d(exact, steps)
    return omitted[load[omitted] > modelled + LAZY_TOLERANCE_KW]


def _carry_prices(lam: np.ndarray, old: list, new: list) -> np.ndarray:
    position = {label: j for j, label in enumerate(old)}
    return np.array([lam[position[label]] if label in position else 0.0 for label in new])


def _solve_sub(problem, free, lam_choice, steps, config, deadline, builder, stats, bound, cap,
               incumbent):
    """One sub-MIP (started from ``incumbent``'s choices of the free customers when given);
    returns (full choice or None, status, upper bound from the sub-MIP or +inf)."""
    from optimizer.handoff import set_start
    from optimizer.highs_steps import _solve_mip

    sub, offset = restricted_problem(problem, free, lam_choice)
    stats.free = max(stats.free, free.size)
    try:
        hm, model, build_s, handoff_s = builder(sub, steps, config.threads, cap)
    except (InfeasibleError, InfeasibleConstraintException):
        # A limit already broken by the fixed customers alone.
        return None, "infeasible", np.inf
    stats.sub_build_s += build_s
    stats.sub_handoff_s += handoff_s
    stats.sub_rows, stats.sub_cols, stats.sub_nnz = hm.n_rows, hm.n_cols, hm.nnz
    t0 = time.perf_counter()
    whole = free.size == problem.shape[0]
    sub_config = config.model_copy(update={"mip_gap": config.mip_gap * (0.9 if whole else 0.5)})
    # The sub-problem's objective differs from the full one by a constant, so its relative gap
    # means little: stop on the absolute gap that the full objective's target allows, or as
    # soon as the incumbent meets the target against the dual bound ``g`` (HiGHS would
    # otherwise spend seconds proving optimality of a 60-customer neighbourhood).
    target = bound - config.mip_gap * max(abs(bound), 1.0) * TARGET_SHARE
    if not whole:
        hm.highs.setOptionValue("mip_abs_gap", config.mip_gap * max(abs(bound), 1.0))
    # Voltage rows in p.u. with sensitivities ~1e-4 p.u./kW let HiGHS' default 1e-6 tolerance
    # accept assignments a few watts over a limit and worth more than the (strict) dual bound.
    hm.highs.setOptionValue("mip_feasibility_tolerance", SUB_MIP_FEASIBILITY_TOLERANCE)
    hm.highs.setOptionValue("primal_feasibility_tolerance", SUB_MIP_FEASIBILITY_TOLERANCE)
    stop_below = hm.sign * (target - offset) if np.isfinite(bound) else None
    if incumbent is not None:
        set_start(hm, model.pair_data, incumbent[np.sort(free)])
    sub_choice, sub_bound, status, _ = _solve_mip(hm, model, sub_config, deadline,
                                                  stop_below=stop_below)
    stats.sub_solve_s += time.perf_counter() - t0
    if sub_choice is None:
        return None, status, np.inf
    choice = lam_choice.copy()
    free = np.sort(free)
    choice[free] = sub_choice
    if free.size < problem.shape[0]:
        return choice, status, np.inf
    # The sub-MIP was the whole problem (a relaxation if peak rows are omitted): its dual
    # bound, shifted by the constant between the two objectives, bounds the optimum too.
    return choice, status, sub_bound + offset


def _raise_infeasible(problem: OfferProblem, config: SolverConfig, peak_cap_kw: float):
    raise InfeasibleError(explain_infeasibility(problem, config, peak_cap_kw))
