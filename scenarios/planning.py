"""The offer plan for the window's peak: event calls, design days, network rows, in rounds.

1. **Event calls** (`scenarios.dispatch`): each contract's days from the day-ahead forecast of
   the feeder's daily peak, no foresight; each called day's event sits on that day's peak.
2. **Rounds.** The expected change of every customer, offer and step of the window is built
   once (`optimizer.offers.build_offer_problem` over all steps); the optimizer sees the design
   days' steps of it only. After each solve the plan's expectation of the *whole window* (the
   same numbers, for the chosen offers) is run through the full AC power flow:
   - a day outside the design set whose planned peak reaches the planned design peak joins the
     design set (lazy peak rows: the planned peak is the window's, not the design days');
   - a line or bus the expected load still violates on a design step gets rows
     (`scenarios.network_rows`).
   The loop stops when a round adds nothing (at most `MAX_ROUNDS`).
3. **The planned peak** is the window's, at the planner's ``objective.peak_quantile``: the
   expected head load plus ``z_q·σ[t]`` with ``σ[t]`` the acceptance draws' spread of the head
   change (normal approximation); the margin of the last round is carried into the next
   round's peak rows, so that the optimizer plans the quantile, not the mean.

Head changes include the losses' change: a kW less customer load relieves the head by
``1 + 2·losses[t]/p_head[t]`` kW (losses ∝ P², the marginal loss factor of the base case).
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from scenarios.dispatch import DispatchPlan, event_steps
from scenarios.errors import InfeasibleError
from scenarios.feeder import FeederModel, build_design, feeder_head_kw
from scenarios.network_rows import (
    Watched,
    drop_unreachable,
    merge,
    near_limit_elements,
    network_fields,
    violated_elements,
)
from scenarios.schema import Scenario

#: Most optimizer rounds (design days and network rows added between them).
MAX_ROUNDS = 5
#: Days added to the design set per round, highest planned peak first.
DAYS_PER_ROUND = 3
#: A day joins the design set when its planned peak is within this of the design peak [kW
#: relative to the peak].
DAY_TOLERANCE = 1e-4


@dataclass
class Plan:
    """The chosen offers and everything the report states about them."""

    problem: object                # optimizer.problem.OfferProblem of the last round
    solution: object               # optimizer.solve.OfferSolution
    menu: xr.Dataset
    design: xr.Dataset
    events: np.ndarray             # [contract, time] bool
    dispatch: DispatchPlan | None
    planned_kw: np.ndarray         # [time] expected feeder-head load after the offers [kW]
    planned_sd_kw: np.ndarray      # [time] its spread from the acceptance draws [kW]
    expected_p_kw: np.ndarray      # [customer, time] expected customer load after [kW]
    watched: Watched
    rounds: list[dict] = field(default_factory=list)
    unfixed: list[str] = field(default_factory=list)

    def planned_peak_kw(self, quantile: float, converged: np.ndarray) -> float:
        """The plan's window peak at ``quantile`` [kW] (normal margin on the peak step)."""
        z = statistics.NormalDist().inv_cdf(quantile)
        values = np.where(converged, self.planned_kw + z * self.planned_sd_kw, -np.inf)
        return float(values.max())


def loss_factor(feeder: FeederModel) -> np.ndarray:
    """Marginal loss factor of each step [-]: ``1 + 2·losses/p_head``, clipped to [1, 1.2]."""
    before = feeder.before
    head = before["p_slack_mw"].values
    losses = before["losses_mw"].values
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = 1.0 + 2.0 * np.where(head > 1e-9, losses / head, 0.0)
    return np.clip(np.nan_to_num(factor, nan=1.0), 1.0, 1.2)


def plan_offers(scenario: Scenario, feeder: FeederModel, dispatch: DispatchPlan | None,
                export_model: Path | None = None, progress=None) -> Plan:
    """Event calls, then optimize in rounds until the window's planned peak and the network
    are covered by the model's rows (module docstring)."""
    from optimizer.offers import build_offer_menu, build_offer_problem
    from optimizer.solve import solve_offers
    from scenarios.feeder import run_feeder_powerflow

    report = progress or (lambda stage: None)
    contracts = list(scenario.offers.curtailment)
    head = feeder_head_kw(feeder)
    n_time = len(head)
    if dispatch is not None:
        events = event_steps(dispatch, contracts, head, feeder.step_h)
    else:
        events = np.zeros((len(contracts), n_time), dtype=bool)
    menu = build_offer_menu(scenario)
    first = build_design(scenario, feeder)
    selection = {k: first.attrs[k] for k in first.attrs
                 if k.startswith(("design_days_from", "forecast_"))}
    days = pd.DatetimeIndex(pd.to_datetime(first.attrs["design_days"]))
    converged = feeder.before["converged"].values.astype(bool)
    factor = loss_factor(feeder)
    z = statistics.NormalDist().inv_cdf(scenario.objective.peak_quantile)
    all_steps = np.arange(n_time)
    watched = near_limit_elements(feeder.before, scenario, first["step"].values)
    margin = np.zeros(n_time)
    rounds: list[dict] = []
    population, profiles = feeder.population, feeder.profiles
    line_names = feeder.before["line"].values
    bus_names = feeder.before["bus"].values
    out_of_reach: list[str] = []
    # The expectations of every step once (the rounds only choose which steps become rows, and
    # the plan over the window reads the same numbers).
    report("expected response of every offer")
    every_day = pd.DatetimeIndex(head.index.normalize().unique())
    full = build_offer_problem(scenario, population, profiles,
                               build_design(scenario, feeder, every_day, selection), events)
    p_kw = profiles["p_kw"].transpose("customer", "time").values
    n = p_kw.shape[0]
    for round_no in range(1, MAX_ROUNDS + 1):
        report(f"optimizing offers (round {round_no})")
        design = build_design(scenario, feeder, days, selection)
        steps = design["step"].values
        problem = dataclasses.replace(
            full,
            base_kw=full.base_kw[steps] + margin[steps],
            delta_kw=full.delta_kw[:, :, steps] * factor[steps][None, None, :],
            trafo_base_kw=(None if full.trafo_base_kw is None else full.trafo_base_kw[steps]),
        )
        fields, out_of_reach = drop_unreachable(
            network_fields(feeder, scenario, steps, watched), problem.delta_kw, problem.eligible,
            (line_names[watched.lines], bus_names[watched.buses]))
        try:
            solution = solve_offers(dataclasses.replace(problem, **fields), scenario.solver,
                                    export_mps=export_model, method=scenario.solver.method,
                                    never_raise_peak=scenario.limits.never_raise_peak)
            problem = dataclasses.replace(problem, **fields)
        except InfeasibleError as error:
            if not fields:
                raise
            # Each row is reachable alone but not all together within the budget and floors:
            # plan without network rows and say so.
            out_of_reach = [*out_of_reach, f"network rows left out: {error}"]
            solution = solve_offers(problem, scenario.solver, export_mps=export_model,
                                    method=scenario.solver.method,
                                    never_raise_peak=scenario.limits.never_raise_peak)
        choice = np.asarray(solution.choice, dtype=np.int64)
        acceptance = problem.acceptance[np.arange(n), choice]
        # Δ is acceptance-weighted: a·c; the acceptance draw's variance is a(1−a)c² = (1−a)/a·Δ².
        change = full.delta_kw[np.arange(n), choice, :]
        spread = np.where(acceptance > 0, (1.0 - acceptance) / np.maximum(acceptance, 1e-12), 0.0)
        planned = head.to_numpy() + factor * change.sum(axis=0)
        sd = factor * np.sqrt(spread @ change**2)
        expected_p = p_kw + change
        margin = z * sd
        target = np.where(converged, planned + margin, -np.inf)
        design_peak = target[steps].max()
        day_of_step = head.index.normalize()
        daily = pd.Series(target, index=day_of_step).groupby(level=0).max()
        outside = daily[~daily.index.isin(days)]
        new_days = outside[outside >= design_peak - DAY_TOLERANCE * abs(design_peak)]
        new_days = new_days.sort_values(ascending=False).index[:DAYS_PER_ROUND]
        pf = run_feeder_powerflow(feeder, expected_p, _moved_q(feeder, expected_p))
        violated = violated_elements(pf, scenario, steps)
        new_lines = np.setdiff1d(violated.lines, watched.lines)
        new_buses = np.setdiff1d(violated.buses, watched.buses)
        rounds.append({
            "round": round_no,
            "design_days": len(days),
            "line_rows": int(watched.lines.size),
            "bus_rows": int(watched.buses.size),
            "planned_peak_kw": float(target.max()),
            "planned_design_peak_kw": float(design_peak),
            "days_added": ", ".join(str(d.date()) for d in new_days),
            "lines_added": int(new_lines.size),
            "buses_added": int(new_buses.size),
        })
        # With a quantile other than the median, the first round's margin enters the peak rows
        # of a second one (the optimizer then plans the quantile, not the mean).
        margin_pending = z != 0.0 and round_no == 1
        if not len(new_days) and not new_lines.size and not new_buses.size \
                and not margin_pending:
            break
        if round_no == MAX_ROUNDS:
            break
        days = days.union(new_days)
        watched = merge(watched, Watched(new_lines, new_buses))
    remaining = violated_elements(pf, scenario, all_steps)
    return Plan(problem=problem, solution=solution, menu=menu, design=design, events=events,
                dispatch=dispatch, planned_kw=planned, planned_sd_kw=sd, expected_p_kw=expected_p,
                watched=watched, rounds=rounds,
                unfixed=out_of_reach + unfixed_elements(feeder, pf, scenario, remaining))


def _moved_q(feeder: FeederModel, p_after: np.ndarray) -> np.ndarray:
    """Reactive load moved with the active load at each customer's power factor [kvar]."""
    pf = np.clip(feeder.population["power_factor"].values, 0.5, 1.0)
    tan_phi = np.sqrt(1.0 / pf**2 - 1.0)
    return feeder.profiles["q_kvar"].values + (p_after - feeder.profiles["p_kw"].values) * tan_phi[:, None]


def unfixed_elements(feeder: FeederModel, pf: xr.Dataset, scenario: Scenario,
                     remaining: Watched) -> list[str]:
    """One line per element the plan's expected load still violates: which, when, how much."""
    limits = scenario.limits
    ok = pf["converged"].values.astype(bool)
    out = []
    loading = pf["line_loading_pct"].values[ok]
    for line in remaining.lines:
        series = loading[:, line]
        over = series > limits.line_loading_max_pct
        out.append(f"line {pf['line'].values[line]}: loading up to {np.nanmax(series):.1f} % "
                   f"(limit {limits.line_loading_max_pct:g} %) on {int(over.sum())} steps")
    # Transformers have their own rows (`build_design`); above 100 % they count as violations.
    trafo_limit = min(100.0, limits.trafo_loading_max_pct)
    trafo = pf["trafo_loading_pct"].values[ok]
    with np.errstate(invalid="ignore"):
        over_trafo = trafo > trafo_limit
    for r in np.flatnonzero(over_trafo.any(axis=0)):
        out.append(f"trafo {pf['trafo'].values[r]}: loading up to {np.nanmax(trafo[:, r]):.1f} % "
                   f"(counted above {trafo_limit:g} %) on {int(over_trafo[:, r].sum())} steps")
    vm = pf["vm_pu"].values[ok]
    for bus in remaining.buses:
        series = vm[:, bus]
        low = series < limits.vm_min_pu
        high = series > limits.vm_max_pu
        if low.any():
            out.append(f"bus {pf['bus'].values[bus]}: voltage down to {np.nanmin(series):.4f} "
                       f"p.u. (limit {limits.vm_min_pu:g}) on {int(low.sum())} steps")
        if high.any():
            out.append(f"bus {pf['bus'].values[bus]}: voltage up to {np.nanmax(series):.4f} "
                       f"p.u. (limit {limits.vm_max_pu:g}) on {int(high.sum())} steps")
    return out
