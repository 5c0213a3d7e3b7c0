"""ε-constraint Pareto fronts: peak reduction versus mean satisfaction or versus cost.

The model is built once with the peak objective (`ModelOptions(objective="peak")`) and an
ε row — mean satisfaction ≥ ε, or incentives + bad debt ≤ ε — whose bound is moved in HiGHS
from point to point (Haimes, Lasdon & Wismer, IEEE Trans. SMC 1 (1971); Mavrotas, Appl. Math.
Comput. 213 (2009) for the sweep). Successive points are warm-started: the LP keeps its basis
when only a row bound moves, and the previous assignment is offered to the MIP as a start.
Every point is re-evaluated per customer on all design steps.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr
from pyomo.common.errors import InfeasibleConstraintException

from optimizer.assignment import evaluate_assignment
from optimizer.handoff import gc_paused, set_start, to_highs
from optimizer.model import ModelOptions, build_model
from optimizer.problem import OfferProblem
from scenarios.errors import InfeasibleError, SolverError
from scenarios.schema import SolverConfig

Against = Literal["satisfaction", "cost"]


def _cost(problem: OfferProblem, values) -> float:
    return problem.incentive_weight * values.incentive_eur + problem.bad_debt_weight * values.bad_debt_eur


def _solve_point(hm, model, config, deadline, method, incumbent):
    from optimizer.solve import _solve_lp_fix, _solve_mip

    pairs = model.pair_data
    # lp-fix moves column bounds; restore the full box before each point.
    cols = hm.x_col.astype(np.int32)
    hm.highs.changeColsBounds(cols.size, cols, np.zeros(cols.size), pairs.counts[pairs.customer])
    if method == "mip":
        if incumbent is not None:
            set_start(hm, pairs, incumbent)
        return _solve_mip(hm, model, config, deadline)
    return _solve_lp_fix(hm, model, config, deadline)


def pareto_front(
    problem: OfferProblem,
    config: SolverConfig,
    *,
    against: Against,
    points: int,
) -> xr.Dataset:
    """Sweep ``points`` ε values between the two extremes of the front.

    Returns a Dataset on dim ``point`` (the sweep point) with ``epsilon``, ``peak_kw_after``,
    ``peak_reduction_kw``, ``satisfaction_mean``, ``cost_eur`` (weighted incentives + bad
    debt), ``objective_eur`` (the scenario's money objective of that assignment), ``gap``
    (of the peak objective against its bound), ``feasible`` and ``offer_choice[step, customer]``.
    ``attrs``: ``against``, ``method``, ``solve_s``.
    """
    from optimizer.solve import AUTO_MIP_MAX_CUSTOMERS

    if points < 2:
        raise ValueError("a front needs at least 2 points")
    start = time.perf_counter()
    deadline = start + config.time_limit_s
    n = problem.shape[0]
    method = "mip" if n <= AUTO_MIP_MAX_CUSTOMERS else "lp-fix"
    with gc_paused():
        model = build_model(problem, ModelOptions(objective="peak", epsilon_row=against))
        try:
            hm = to_highs(model, threads=config.threads)
        except InfeasibleConstraintException:
            # A limit already broken by loads no offer can change (as in `solve_offers`).
            from optimizer.infeasibility import explain_infeasibility

            raise InfeasibleError("pareto: " + explain_infeasibility(problem, config)) from None
        row_name = "satisfaction_mean" if against == "satisfaction" else "cost_cap"
        row = hm.row_of[row_name][0]
        h = hm.highs
        lp = h.getLp()
        lo0, hi0 = float(lp.row_lower_[row]), float(lp.row_upper_[row])
        # Extreme 1: the largest peak reduction under the scenario's own limits.
        choice, _, status, _ = _solve_point(hm, model, config, deadline, method, None)
        if choice is None:
            if status == "infeasible":
                from optimizer.infeasibility import explain_infeasibility

                # The same one line as `run`: which limits conflict and by how much.
                raise InfeasibleError("pareto: " + explain_infeasibility(problem, config))
            raise SolverError(f"pareto: HiGHS found no assignment ({status}) within "
                              f"solver.time_limit_s = {config.time_limit_s:g} s")
        first = evaluate_assignment(problem, choice)
        pairs = model.pair_data
        if against == "satisfaction":
            best = np.maximum.reduceat(pairs.satisfaction, pairs.ptr[:-1]).mean()
            grid = np.linspace(max(first.satisfaction_mean, problem.satisfaction_floor_mean), best, points)
        else:
            grid = np.linspace(_cost(problem, first), 0.0, points)
        results, incumbent = [], choice
        for eps in grid:
            if against == "satisfaction":
                h.changeRowBounds(row, float(eps) * n, hi0)
            else:
                h.changeRowBounds(row, lo0, float(eps) + 1e-9 * max(1.0, abs(eps)))
            choice, bound, status, _ = _solve_point(hm, model, config, deadline, method, incumbent)
            if choice is None:
                results.append((eps, None, np.nan, status))
                continue
            incumbent = choice
            results.append((eps, choice, bound, status))
    return _front_dataset(problem, against, method, results, time.perf_counter() - start)


def _front_dataset(problem, against, method, results, solve_s) -> xr.Dataset:
    n = problem.shape[0]
    m = len(results)
    fields = {name: np.full(m, np.nan) for name in (
        "epsilon", "peak_kw_after", "peak_reduction_kw", "satisfaction_mean", "cost_eur",
        "objective_eur", "gap")}
    feasible = np.zeros(m, dtype=bool)
    status = np.empty(m, dtype="<U40")
    choice_all = np.full((m, n), -1, dtype=np.int64)
    for j, (eps, choice, bound, stat) in enumerate(results):
        fields["epsilon"][j] = eps
        status[j] = stat
        if choice is None:
            continue
        values = evaluate_assignment(problem, choice)
        feasible[j] = True
        choice_all[j] = choice
        reduction = values.peak_kw_before - values.peak_kw_after
        fields["peak_kw_after"][j] = values.peak_kw_after
        fields["peak_reduction_kw"][j] = reduction
        fields["satisfaction_mean"][j] = values.satisfaction_mean
        fields["cost_eur"][j] = _cost(problem, values)
        fields["objective_eur"][j] = values.objective
        # Relative to the reduction, floored at 1 kW (a zero-reduction point has no scale).
        fields["gap"][j] = max(bound - reduction, 0.0) / max(abs(reduction), 1.0) if np.isfinite(bound) else np.nan
    units = {"epsilon": "1" if against == "satisfaction" else "EUR", "peak_kw_after": "kW",
             "peak_reduction_kw": "kW", "satisfaction_mean": "1", "cost_eur": "EUR",
             "objective_eur": "EUR", "gap": "1"}
    ds = xr.Dataset(
        {name: ("point", values, {"units": units[name]}) for name, values in fields.items()},
        coords={"point": np.arange(m), "customer": problem.customer_ids},
    )
    ds["feasible"] = ("point", feasible, {"units": "bool"})
    ds["status"] = ("point", status, {"units": "1"})
    ds["offer_choice"] = (("point", "customer"), choice_all,
                          {"units": "1", "long_name": "offer index per customer (-1: infeasible point)"})
    ds.attrs.update(against=against, method=method, solve_s=solve_s,
                    offer_names=list(problem.offer_names),
                    description="ε-constraint Pareto front; dim 'point' is the sweep point")
    return ds


def plot_pareto(front: xr.Dataset, path: Path) -> Path:
    """Write the front as a PNG: peak reduction [kW] against the swept criterion."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    against = front.attrs["against"]
    ok = front["feasible"].values
    x = front["satisfaction_mean" if against == "satisfaction" else "cost_eur"].values[ok]
    y = front["peak_reduction_kw"].values[ok]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(x, y, "o-", color="tab:blue")
    ax.set_xlabel("mean predicted satisfaction [-]" if against == "satisfaction"
                  else "incentives + expected bad debt [EUR]")
    ax.set_ylabel("feeder peak reduction [kW]")
    ax.set_title(f"Pareto front: peak reduction vs {against}")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
