"""Monte-Carlo replay of the chosen offers through the simulator and the power flow.

Each draw decides afresh who accepts, how much each event delivers and how much load comes
back afterwards (`optimizer.offers.replay_offers`), then reruns the AC power flow over the whole
window, so that peaks moved onto other hours or days by a tariff are seen too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from scenarios.schema import Scenario
from scenarios.unbalanced import count_unbalance_violations, voltage_extremes
from sim.dataset import validate


@dataclass
class Evaluation:
    """Replay results on labelled dims, and the KPIs drawn from them."""

    dataset: xr.Dataset
    kpis: dict[str, float]


def count_violations(pf: xr.Dataset, scenario: Scenario) -> int:
    """Element-steps outside the limits: bus voltage band, line and transformer loading, and
    in unbalanced mode the voltage band on every phase and the voltage unbalance factor.

    Steps whose power flow did not converge are left out (their voltages mean nothing; they
    are counted separately), as are buses left NaN by the power flow.
    """
    limits = scenario.limits
    pf = pf.isel(time=np.flatnonzero(pf["converged"].values.astype(bool)))
    vm_low, vm_high = voltage_extremes(pf)  # per phase in unbalanced mode
    with np.errstate(invalid="ignore"):
        count = int(np.sum((vm_low < limits.vm_min_pu) | (vm_high > limits.vm_max_pu)))
        count += int(np.sum(pf["line_loading_pct"].values > limits.line_loading_max_pct))
        count += int(np.sum(pf["trafo_loading_pct"].values > min(100.0, limits.trafo_loading_max_pct)))
    count += count_unbalance_violations(pf, limits)  # unbalanced mode only
    return count


def converged_peak_kw(pf: xr.Dataset) -> float:
    """Largest feeder-head load over the converged steps [kW] (NaN if none converged)."""
    ok = pf["converged"].values.astype(bool)
    head = pf["p_slack_mw"].values[ok] * 1000.0
    return float(head.max()) if head.size else float("nan")


def expected_peak_kw(problem, choice: np.ndarray) -> float:
    """Feeder peak on the design steps if every customer behaves as expected [kW].

    ``max_t base[t] + Σ_i Δ[i, choice_i, t]``, the optimizer's own view of its assignment.
    """
    n = problem.delta_kw.shape[0]
    delta = problem.delta_kw[np.arange(n), choice, :].sum(axis=0)
    return float(np.max(problem.base_kw + delta))


def dispatch_events(scenario: Scenario, feeder, design: xr.Dataset, target_kw: float) -> np.ndarray:
    """Event steps [time] the utility calls: the design days, and any other day whose feeder
    peak (day-ahead, taken as known) exceeds the peak the offers were designed to reach.

    Each contract's own `max_events` and the customers' fatigue limit what is delivered
    (`replay_offers`).
    """
    from scenarios.feeder import event_mask, feeder_head_kw, hours_from_daily_peak

    head_kw = feeder_head_kw(feeder)
    daily_peak = head_kw.groupby(head_kw.index.normalize()).max()
    design_days = pd.DatetimeIndex(pd.to_datetime(design.attrs["design_days"]))
    days = design_days.union(daily_peak.index[daily_peak.to_numpy() > target_kw])
    return event_mask(scenario, hours_from_daily_peak(head_kw, days))


def evaluate_offers(scenario: Scenario, feeder, design: xr.Dataset, outcome) -> Evaluation:
    """Replay the chosen offers `evaluation.draws` times and measure the realized effect."""
    from optimizer.offers import replay_offers
    from scenarios.feeder import run_feeder_powerflow

    problem, solution, menu = outcome.problem, outcome.solution, outcome.menu
    choice = np.asarray(solution.choice, dtype=np.int64)
    population, profiles = feeder.population, feeder.profiles
    n_time = len(feeder.time)
    design_steps = design["step"].values
    events = dispatch_events(scenario, feeder, design, expected_peak_kw(problem, choice))

    draws = scenario.evaluation.draws
    n = len(choice)
    acceptance = problem.acceptance[np.arange(n), choice]
    season_scale = float(design.attrs["season_scale"])
    head_kw = np.empty((draws, n_time))
    vm_min = np.empty((draws, n_time))
    vm_max = np.empty((draws, n_time))
    peaks = np.empty(draws)
    violations = np.empty(draws)
    nonconverged = np.zeros(draws)
    accepted = np.zeros(population.sizes["customer"])
    paid = np.zeros(population.sizes["customer"])
    satisfaction = np.zeros(population.sizes["customer"])
    tan_phi = _tan_phi(population)
    draw_loads: list[np.ndarray] = []
    for draw in range(draws):
        replay = replay_offers(
            scenario, population, profiles, choice, events, draw=draw, acceptance=acceptance,
            season_scale=season_scale,
        )
        p_after = replay.p_kw
        q_after = profiles["q_kvar"].values + (p_after - profiles["p_kw"].values) * tan_phi[:, None]
        pf = run_feeder_powerflow(feeder, p_after, q_after)
        head_kw[draw] = pf["p_slack_mw"].values * 1000.0
        vm_min[draw] = np.nanmin(pf["vm_pu"].values, axis=1)
        vm_max[draw] = np.nanmax(pf["vm_pu"].values, axis=1)
        peaks[draw] = converged_peak_kw(pf)
        nonconverged[draw] = np.sum(~pf["converged"].values.astype(bool))
        violations[draw] = count_violations(pf.isel(time=design_steps), scenario)
        accepted += replay.accepted
        paid += replay.incentive_eur
        satisfaction += replay.satisfaction
        draw_loads.append(p_after)
    accepted /= draws
    paid /= draws
    satisfaction /= draws
    median_draw = int(np.argsort(peaks, kind="stable")[(draws - 1) // 2])

    offer_names = np.asarray(menu["offer"].values).astype(str)
    chosen = offer_names[choice]
    tiers = population["tier"].values.astype(str)
    by_tier = np.zeros((4, len(offer_names)), dtype=np.int64)
    for t, tier in enumerate("ABCD"):
        by_tier[t] = np.bincount(choice[tiers == tier], minlength=len(offer_names))

    ds = xr.Dataset(
        {
            "chosen_offer": ("customer", chosen, {"units": "1", "long_name": "offer made"}),
            "chosen_offer_index": ("customer", choice, {"units": "1"}),
            "acceptance_probability": ("customer", acceptance,
                                       {"units": "1", "long_name": "expected acceptance"}),
            "accepted_share": ("customer", accepted,
                               {"units": "1", "long_name": "share of draws accepted"}),
            "satisfaction_predicted": ("customer", problem.satisfaction[np.arange(n), choice],
                                       {"units": "1"}),
            "satisfaction_after": ("customer", satisfaction,
                                   {"units": "1", "long_name": "mean over draws"}),
            "incentive_paid_eur": ("customer", paid, {"units": "EUR", "long_name": "mean over draws"}),
            "p_kw_after": (("customer", "time"), draw_loads[median_draw],
                           {"units": "kW", "long_name": "active load after offers, median-peak draw"}),
            "p_slack_after_mw": (("draw", "time"), head_kw / 1000.0,
                                 {"units": "MW", "long_name": "feeder-head load after offers"}),
            "vm_min_after_pu": (("draw", "time"), vm_min, {"units": "p.u."}),
            "vm_max_after_pu": (("draw", "time"), vm_max, {"units": "p.u."}),
            "peak_kw_after": ("draw", peaks, {"units": "kW"}),
            "violations_after_draws": ("draw", violations, {"units": "1"}),
            "offers_by_tier": (("tier", "offer"), by_tier, {"units": "1",
                                                            "long_name": "customers per offer"}),
            "offer_tariff": ("offer", np.asarray(menu["tariff"].values).astype(str), {"units": "1"}),
            "offer_contract": ("offer", np.asarray(menu["contract"].values).astype(str),
                               {"units": "1"}),
            "design_step": ("time", np.isin(np.arange(n_time), design_steps),
                            {"units": "bool", "long_name": "step of a design day"}),
            "event_step": ("time", events, {"units": "bool", "long_name": "curtailment event"}),
        },
        coords={
            "customer": population["customer"].values,
            "time": feeder.time,
            "draw": np.arange(draws),
            "tier": list("ABCD"),
            "offer": offer_names,
        },
    )
    validate(ds, stage="evaluation")
    kpis = {
        "peak_kw_after_expected": expected_peak_kw(problem, choice),
        "peak_kw_after_p10": float(np.percentile(peaks, 10)),
        "peak_kw_after_p50": float(np.percentile(peaks, 50)),
        "peak_kw_after_p90": float(np.percentile(peaks, 90)),
        "incentive_eur": float(paid.sum()),
        "satisfaction_mean_after": float(satisfaction.mean()),
        "violations_after": float(np.median(violations)),
        "nonconverged_steps_after": float(nonconverged.max()),
        "acceptance_rate": float(accepted[choice > 0].mean()) if (choice > 0).any() else 0.0,
        "offers_made": float((choice > 0).sum()),
        "objective_eur": float(solution.objective),
        "mip_gap": float(solution.gap),
    }
    return Evaluation(dataset=ds, kpis=kpis)


def _tan_phi(population: xr.Dataset) -> np.ndarray:
    """tan φ of each customer's power factor, to move q with p."""
    pf = np.clip(population["power_factor"].values, 0.5, 1.0)
    return np.sqrt(1.0 / pf**2 - 1.0)
