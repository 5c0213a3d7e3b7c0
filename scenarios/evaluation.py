"""Monte-Carlo replay of the chosen offers through the simulator and the power flow.

Each draw decides afresh who accepts, how much each event delivers and how much load comes
back afterwards (`optimizer.offers.replay_offers`), then reruns the AC power flow over the whole
window, so that peaks moved onto other hours or days by a tariff are seen too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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


def evaluate_offers(scenario: Scenario, feeder, plan) -> Evaluation:
    """Replay the chosen offers `evaluation.draws` times over the whole window and measure the
    realized effect on the same steps the plan states its peak over (the window)."""
    from optimizer.offers import replay_offers
    from scenarios.feeder import run_feeder_powerflow

    problem, solution, menu = plan.problem, plan.solution, plan.menu
    design = plan.design
    choice = np.asarray(solution.choice, dtype=np.int64)
    population, profiles = feeder.population, feeder.profiles
    n_time = len(feeder.time)
    design_steps = design["step"].values
    events = plan.events

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
        violations[draw] = count_violations(pf, scenario)
        accepted += replay.accepted
        paid += replay.incentive_eur
        satisfaction += replay.satisfaction
    accepted /= draws
    paid /= draws
    satisfaction /= draws
    median_draw = int(np.argsort(peaks, kind="stable")[(draws - 1) // 2])
    # Draws are keyed by their number: the median draw's loads are drawn again rather than
    # every draw's customer series kept (memory follows customers, not customers x draws).
    median_loads = replay_offers(scenario, population, profiles, choice, events, draw=median_draw,
                                 acceptance=acceptance, season_scale=season_scale).p_kw

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
            "p_kw_after": (("customer", "time"), median_loads,
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
            "event_step": ("time", events.any(axis=0),
                           {"units": "bool", "long_name": "curtailment event of any contract"}),
            "contract_event_step": (("contract", "time"), events,
                                    {"units": "bool", "long_name": "curtailment event steps"}),
            "p_slack_planned_mw": ("time", plan.planned_kw / 1000.0,
                                   {"units": "MW", "long_name": "feeder-head load after, plan"}),
            "p_slack_planned_sd_mw": ("time", plan.planned_sd_kw / 1000.0,
                                      {"units": "MW",
                                       "long_name": "spread of the planned head load"}),
        },
        coords={
            "customer": population["customer"].values,
            "time": feeder.time,
            "draw": np.arange(draws),
            "tier": list("ABCD"),
            "offer": offer_names,
            "contract": np.array([c.name for c in scenario.offers.curtailment], dtype=str),
        },
    )
    if plan.dispatch is not None:
        ds = ds.merge(dispatch_dataset(plan.dispatch))
    validate(ds, stage="evaluation", allow_nan=("event_threshold_kw",))
    converged = feeder.before["converged"].values.astype(bool)
    q = scenario.objective.peak_quantile
    kpis = {
        "peak_kw_after_expected": plan.planned_peak_kw(q, converged),
        "peak_kw_after_planned_p10": plan.planned_peak_kw(0.1, converged),
        "peak_kw_after_planned_p90": plan.planned_peak_kw(0.9, converged),
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
    before = converged_peak_kw(feeder.before)
    planned_cut = before - kpis["peak_kw_after_expected"]
    realized_cut = before - kpis["peak_kw_after_p50"]
    kpis["peak_cut_planned_kw"] = planned_cut
    kpis["peak_cut_realized_kw"] = realized_cut
    kpis["peak_cut_realized_pct"] = 100.0 * realized_cut / before
    if abs(planned_cut) > 1e-9:
        kpis["realized_share_of_planned_pct"] = 100.0 * realized_cut / planned_cut
    if plan.dispatch is not None:
        kpis["events_called_days"] = float(plan.dispatch.any_called().sum())
        kpis["event_hit_rate_top_days"] = dispatch_hit_rate(plan.dispatch)
    kpis["planning_rounds"] = float(len(plan.rounds))
    kpis["design_days"] = float(len(plan.design.attrs["design_days"]))
    kpis["network_rows_elements"] = float(plan.watched.lines.size + plan.watched.buses.size)
    return Evaluation(dataset=ds, kpis=kpis)


def dispatch_hit_rate(dispatch) -> float:
    """Share of the window's top days (as many as the most events any contract made, at least
    one) on which an event was called."""
    from scenarios.dispatch import hit_rate

    top = int(dispatch.called.sum(axis=1).max()) if dispatch.called.size else 1
    return hit_rate(dispatch, max(top, 1))


def dispatch_dataset(dispatch) -> xr.Dataset:
    """The event calls and what they were decided on, over ``day``."""
    return xr.Dataset(
        {
            "event_called": (("contract", "day"), dispatch.called,
                             {"units": "bool", "long_name": "event called on the day"}),
            "event_threshold_kw": (("contract", "day"), dispatch.threshold_kw,
                                   {"units": "kW", "long_name": "threshold the forecast met"}),
            "forecast_peak_kw": ("day", dispatch.forecast_kw,
                                 {"units": "kW", "long_name": "day-ahead forecast daily peak "
                                  "compared with the threshold"}),
            "forecast_peak_p10_kw": ("day", dispatch.p10_kw, {"units": "kW"}),
            "forecast_peak_p50_kw": ("day", dispatch.p50_kw, {"units": "kW"}),
            "forecast_peak_p90_kw": ("day", dispatch.p90_kw, {"units": "kW"}),
            "actual_peak_kw": ("day", dispatch.actual_kw,
                               {"units": "kW", "long_name": "actual daily peak before offers"}),
        },
        coords={"day": dispatch.day, "contract": np.array(dispatch.contract, dtype=str)},
    )


def _tan_phi(population: xr.Dataset) -> np.ndarray:
    """tan φ of each customer's power factor, to move q with p."""
    pf = np.clip(population["power_factor"].values, 0.5, 1.0)
    return np.sqrt(1.0 / pf**2 - 1.0)
