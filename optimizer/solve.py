"""Solve the offer assignment with HiGHS: exact MIP for small problems, LP-fix at scale.

Methods
-------
``mip``
    HiGHS branch-and-cut on the whole model (exact to the MIP gap).
``lp-fix``
    LP relaxation (a vertex: at most about one fractional customer per coupling row, since
    one-offer-per-customer is a GUB structure), fix every integral customer, solve a small
    sub-MIP over the fractional customers plus those with the smallest regret (LP reduced
    cost of leaving their choice), widen while infeasible or while the gap to the LP bound is
    above the requested MIP gap (Lodi & Fischetti's relaxation-induced neighbourhoods, in the
    RINS family: Danna, Rothberg & Le Pape, Math. Prog. 102 (2005)). The reported bound is
    the LP relaxation's, so the gap is certified.
``cluster``
    Integer counts per cluster of alike customers (`optimizer.cluster`), disaggregated and
    evaluated per customer; the bound is still the per-customer LP's.
``lagrange-fix``
    The same fixing idea without the LP: the Lagrangian dual over the coupling rows is
    maximised by column generation in NumPy/Numba, its bound certifies the gap, and a Pyomo
    sub-MIP over the customers with the smallest reduced-value margins recovers an assignment
    (`optimizer.lagrange_fix`); peak rows are added lazily.
``auto``
    ``mip`` up to `AUTO_MIP_MAX_CUSTOMERS`, else ``lagrange-fix``.

Every result is re-evaluated on all design steps by `optimizer.assignment`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import highspy
import numpy as np
import xarray as xr
from pyomo.common.errors import InfeasibleConstraintException

from optimizer.handoff import (
    HighsModel,
    gc_paused,
    run_with_deadline,
    set_start,
    status_text,
    to_highs,
)
from optimizer.highs_steps import (  # noqa: F401  (re-exported: callers import them from here)
    _INFEASIBLE,
    GAP_FLOOR_EUR,
    IPM_MIN_NONZEROS,
    OfferSolution,
    _objective,
    _solve_mip,
    choice_from_values,
    make_solution,
    solve_relaxation,
)
from optimizer.model import ModelOptions, build_model
from optimizer.problem import OfferProblem
from scenarios.errors import InfeasibleError, InputError, SolverError
from scenarios.schema import SolverConfig

Method = Literal["auto", "mip", "lp-fix", "lagrange-fix", "cluster"]

#: Largest problem solved by plain branch-and-cut in ``auto`` mode [customers].
AUTO_MIP_MAX_CUSTOMERS = 300
#: Customers freed around the fractional ones in the first LP-fix sub-MIP.
LPFIX_FIRST_FREE = 40
#: Widening stops at this many free customers once an assignment is found.
LPFIX_MAX_FREE = 2500
#: A customer is integral in the LP when its largest x is at least 1 − this.
INTEGRALITY_TOLERANCE = 1e-6
def solve_offers(
    problem: OfferProblem,
    config: SolverConfig,
    *,
    export_mps: Path | None = None,
    method: Method = "auto",
    never_raise_peak: bool = False,
) -> OfferSolution:
    """Choose one offer per customer (see the module docstring for the methods).

    ``never_raise_peak`` bounds the peak by the base peak (``peak ≤ max_t base[t]``): no
    assignment whose expected feeder peak exceeds today's is accepted, whatever it earns
    otherwise (not available in cluster mode).

    Raises
    ------
    InfeasibleError
        No assignment satisfies the limits; the message names the conflicting limits and by
        how much (`optimizer.infeasibility`).
    SolverError
        HiGHS failed or found no assignment within the time limit.
    InputError
        ``export_mps`` does not end in ``.mps`` or ``.lp``.
    """
    if export_mps is not None and Path(export_mps).suffix.lower() not in (".mps", ".lp"):
        raise InputError(f"--export-model: '{export_mps}' must end in .mps or .lp")
    start = time.perf_counter()
    deadline = start + config.time_limit_s
    n = problem.shape[0]
    if method == "auto":
        method = "mip" if n <= AUTO_MIP_MAX_CUSTOMERS else "lagrange-fix"
    cap = float(np.max(problem.base_kw)) if never_raise_peak else np.inf
    options = ModelOptions(peak_cap_kw=cap)
    if method == "lagrange-fix":
        if export_mps is not None:
            # The method never builds the full model; an export asks for it explicitly.
            with gc_paused():
                write_model(to_highs(build_model(problem, options), threads=config.threads),
                            Path(export_mps))
        solution = _solve_lagrange_fix(problem, config, start, deadline, cap)
    elif method == "cluster":
        from optimizer.cluster import solve_clustered

        if never_raise_peak:
            raise InputError("never_raise_peak is not available with solver method 'cluster'")
        export = None if export_mps is None else (lambda hm: write_model(hm, Path(export_mps)))
        return solve_clustered(problem, config, export=export, deadline=deadline)
    else:
        with gc_paused():
            solution = _solve_model(problem, config, export_mps, method, start, deadline, options)
    if solution.peak_kw_after > cap + 1e-6 * max(cap, 1.0):
        raise SolverError(f"peak {solution.peak_kw_after:.3f} kW above the cap {cap:.3f} kW")
    return solution


def _solve_model(problem, config, export_mps, method, start, deadline, options) -> OfferSolution:
    model = build_model(problem, options)
    built = time.perf_counter()
    try:
        hm = to_highs(model, threads=config.threads)
    except InfeasibleConstraintException:
        # A limit already broken by loads no offer can change (e.g. a line with no flexible
        # customer downstream).
        from optimizer.infeasibility import explain_infeasibility

        raise InfeasibleError(explain_infeasibility(problem, config, options.peak_cap_kw)) from None
    handed = time.perf_counter()
    if export_mps is not None:
        write_model(hm, Path(export_mps))
    if method == "mip":
        choice, bound, status, fractional = _solve_mip(hm, model, config, deadline)
    elif method == "lp-fix":
        choice, bound, status, fractional = _solve_lp_fix(hm, model, config, deadline)
    else:
        raise InputError(
            f"solver method must be auto, mip, lp-fix, lagrange-fix or cluster, got '{method}'"
        )
    if choice is None:
        from optimizer.infeasibility import explain_infeasibility

        if status == "infeasible":
            raise InfeasibleError(explain_infeasibility(problem, config, options.peak_cap_kw))
        raise SolverError(f"HiGHS found no assignment ({status}) within {config.time_limit_s:g} s")
    return make_solution(
        problem, choice, bound, status, method,
        build_s=built - start, handoff_s=handed - built, solve_s=time.perf_counter() - handed,
        hm=hm, peak_rows=len(model.S), fractional=fractional,
    )


def _solve_lagrange_fix(problem, config, start, deadline, cap) -> OfferSolution:
    from types import SimpleNamespace

    from optimizer.lagrange_fix import lagrange_fix

    with gc_paused():
        choice, bound, status, stats = lagrange_fix(problem, config, deadline, peak_cap_kw=cap)
    total = time.perf_counter() - start
    build_s = stats.prep_s + stats.sub_build_s
    # Sizes are those of the last sub-MIP: the full LP is never built.
    sizes = SimpleNamespace(n_cols=stats.sub_cols, n_rows=stats.sub_rows, nnz=stats.sub_nnz)
    note = (f"dual: {stats.iterations} iterations ({stats.dual_status}) over "
            f"{stats.peak_rows} peak rows ({stats.lazy_added} added lazily) in {stats.dual_s:.2f} s; "
            f"sub-MIP over {stats.free} customers; sizes are the sub-MIP's")
    return make_solution(
        problem, choice, bound, status, "lagrange-fix", build_s=build_s,
        handoff_s=stats.sub_handoff_s, solve_s=total - build_s - stats.sub_handoff_s,
        hm=sizes, peak_rows=stats.peak_rows, fractional=0, note=note,
    )


def write_model(hm: HighsModel, path: Path) -> None:
    """Write the model HiGHS holds (MPS or LP by the suffix; minimisation of −objective).

    Rows the hand-off labelled carry their label as name (``budget``, ``peak_t12``,
    ``line_3_t12``, ``voltage_17_t40``, …; HiGHS numbers the others), so a reader of the file
    sees which limits the model holds.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for label, rows in hm.row_of.items():
        parts = label if isinstance(label, tuple) else (label,)
        stem = "_".join(str(p) for p in parts[:-1]) + f"_t{parts[-1]}" if len(parts) > 1 \
            else str(parts[0])
        for j, row in enumerate(rows):
            hm.highs.passRowName(int(row), stem if len(rows) == 1 else f"{stem}_{j}")
    status = hm.highs.writeModel(str(path))
    if status == highspy.HighsStatus.kError:
        # A file that cannot be written is bad input (exit 1), not a solver failure.
        raise InputError(f"--export-model: '{path}': HiGHS could not write the model there")


def regret_order(model, x: np.ndarray, reduced: np.ndarray) -> np.ndarray:
    """Customers sorted by how cheaply the LP would let them change offer (smallest first).

    Regret of customer i = the smallest |reduced cost| among its pairs not chosen in the LP;
    fractional customers come first (regret −1).
    """
    pairs = model.pair_data
    top = np.maximum.reduceat(x, pairs.ptr[:-1])
    chosen = x >= top[pairs.customer] - 1e-9
    masked = np.where(chosen, np.inf, np.abs(reduced))
    regret = np.minimum.reduceat(masked, pairs.ptr[:-1])
    regret[top < 1.0 - INTEGRALITY_TOLERANCE] = -1.0
    return np.argsort(regret, kind="stable")


def solve_sub_mip(hm: HighsModel, model, fixed_choice: np.ndarray, free: np.ndarray,
                  config: SolverConfig, deadline: float, incumbent: np.ndarray | None):
    """Fix all customers but ``free`` to ``fixed_choice`` and solve the remaining MIP.

    Returns (choice or None, status).
    """
    pairs = model.pair_data
    h = hm.highs
    is_free = np.zeros(pairs.n_customers, dtype=bool)
    is_free[free] = True
    free_pair = is_free[pairs.customer]
    picked = pairs.offer == fixed_choice[pairs.customer]
    lower = np.where(free_pair, 0.0, picked.astype(float))
    upper = np.where(free_pair, 1.0, picked.astype(float))
    cols = hm.x_col.astype(np.int32)
    h.changeColsBounds(cols.size, cols, lower, upper)
    h.setOptionValue("mip_rel_gap", config.mip_gap / 2)
    if incumbent is not None:
        set_start(hm, pairs, incumbent)
    run_with_deadline(h, deadline)
    status = h.getModelStatus()
    if status in _INFEASIBLE:
        return None, "infeasible"
    if h.getInfo().primal_solution_status != 2:
        return None, status_text(h, status)
    x = np.asarray(h.getSolution().col_value)[hm.x_col]
    return choice_from_values(model, x), status_text(h, status)


def _solve_lp_fix(hm: HighsModel, model, config: SolverConfig, deadline: float):
    lp_status, x, reduced, bound = solve_relaxation(hm, deadline)
    if lp_status != "optimal":
        return None, np.nan, lp_status, 0
    pairs = model.pair_data
    order = regret_order(model, x, reduced)
    top = np.maximum.reduceat(x, pairs.ptr[:-1])
    fractional = int((top < 1.0 - INTEGRALITY_TOLERANCE).sum())
    lp_choice = choice_from_values(model, x)
    n = pairs.n_customers
    size = min(n, fractional + LPFIX_FIRST_FREE)
    best: np.ndarray | None = None
    best_value = -np.inf
    status = "no sub-MIP solved"
    while True:
        choice, sub_status = solve_sub_mip(
            hm, model, lp_choice, order[:size], config, deadline, best
        )
        if choice is not None:
            # Exact peak-row pruning: the model objective is the all-steps objective.
            value = _objective(hm)
            if value > best_value:
                best, best_value = choice, value
            if size >= n:
                # The sub-MIP was the whole problem: its dual bound is a global bound too.
                bound = min(bound, hm.sign * hm.highs.getInfo().mip_dual_bound)
            gap = max(bound - best_value, 0.0) / max(abs(best_value), GAP_FLOOR_EUR)
            status = "optimal" if gap <= config.mip_gap else "gap above target"
            if gap <= config.mip_gap:
                break
        # Widening helps while the fixings cost value; an integrality gap of the LP bound
        # itself does not shrink, so stop at LPFIX_MAX_FREE unless still infeasible.
        if size >= n or time.perf_counter() >= deadline or (
            best is not None and size >= LPFIX_MAX_FREE
        ):
            if best is not None and time.perf_counter() >= deadline:
                status = "time limit"
            break
        size = min(n, 4 * size)
    if best is None:
        return None, np.nan, "infeasible" if sub_status == "infeasible" else sub_status, fractional
    return best, bound, status, fractional


def solution_dataset(problem: OfferProblem, solution: OfferSolution) -> xr.Dataset:
    """The solution on labelled dims: ``offer[customer]`` (index) and ``offer_name[customer]``,
    the KPIs as scalar variables with units, the solve statistics as attrs."""
    names = np.asarray(problem.offer_names)
    ds = xr.Dataset(
        {
            "offer": ("customer", solution.choice, {"units": "1", "long_name": "chosen offer index"}),
            "offer_name": ("customer", names[solution.choice].astype(str), {"units": "1"}),
            "objective_eur": ((), solution.objective, {"units": "EUR"}),
            "objective_bound_eur": ((), solution.bound, {"units": "EUR"}),
            "mip_gap": ((), solution.gap, {"units": "1"}),
            "peak_kw_before": ((), solution.peak_kw_before, {"units": "kW"}),
            "peak_kw_after_expected": ((), solution.peak_kw_after, {"units": "kW"}),
            "incentive_expected_eur": ((), solution.incentive_eur, {"units": "EUR"}),
            "bad_debt_expected_eur": ((), solution.bad_debt_eur, {"units": "EUR"}),
            "satisfaction_mean_expected": ((), solution.satisfaction_mean, {"units": "1"}),
            "revenue_change_expected_eur": ((), solution.revenue_change_eur, {"units": "EUR"}),
        },
        coords={"customer": problem.customer_ids},
    )
    ds.attrs.update(
        solver_status=solution.status, solver_method=solution.method,
        build_s=solution.build_s, handoff_s=solution.handoff_s, solve_s=solution.solve_s,
        model_rows=solution.rows, model_columns=solution.columns, model_nonzeros=solution.nonzeros,
        peak_rows=solution.peak_rows, solver_note=solution.note,
    )
    return ds
