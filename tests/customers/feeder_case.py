"""A small real feeder case shared by the customers and offers tests.

CIGRE LV net, synthetic customers, synthetic winter weather, simulated profiles (`sim.profiles`),
credit and baseline satisfaction, and a design Dataset like the pipeline's (every step of the two
peak days, events within ±1 h of each day's feeder peak).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import xarray as xr

from scenarios.schema import Scenario

MENU = {
    "current_tariff": "flat",
    "tariffs": [
        {"name": "flat", "kind": "flat", "price_eur_per_kwh": 0.32, "fixed_eur_per_month": 10.0},
        {"name": "tou", "kind": "tou", "fixed_eur_per_month": 10.0, "periods": [
            {"name": "offpeak", "start_h": 0, "end_h": 7, "price_eur_per_kwh": 0.22},
            {"name": "shoulder", "start_h": 7, "end_h": 17, "price_eur_per_kwh": 0.30},
            {"name": "peak", "start_h": 17, "end_h": 21, "price_eur_per_kwh": 0.55},
            {"name": "late", "start_h": 21, "end_h": 24, "price_eur_per_kwh": 0.30},
        ]},
    ],
    "curtailment": [
        {"name": "cut2", "kw": 2.0, "max_events": 10, "event_h": 2.0, "incentive_eur": 60.0,
         "payment_eur_per_kwh": 0.2},
        {"name": "cut5biz", "kw": 5.0, "max_events": 15, "event_h": 2.0, "incentive_eur": 200.0,
         "segments": ["commercial", "industrial"]},
    ],
}


def make_scenario(**overrides) -> Scenario:
    data = {
        "name": "test-case",
        "seed": 7,
        "network": {"source": "pandapower:cigre_lv"},
        "time": {"start": "2024-01-15", "days": 4, "step_min": 15, "design_days": 2},
        "weather": {"climate": "continental"},
        "customers": {"count": 120, "ev_share": 0.3, "heat_pump_share": 0.3},
        "offers": MENU,
    }
    data.update(overrides)
    return Scenario.model_validate(data)


@lru_cache(maxsize=4)
def _net():
    import pandapower.networks as pn

    return pn.create_cigre_network_lv()


def net():
    import copy

    return copy.deepcopy(_net())


def simulate(scenario: Scenario, population: xr.Dataset) -> xr.Dataset:
    from sim.profiles import simulate_profiles
    from sim.weather import build_weather

    steps = scenario.time.days * 24 * 60 // scenario.time.step_min
    time = pd.date_range(pd.Timestamp(scenario.time.start), periods=steps,
                         freq=f"{scenario.time.step_min}min")
    weather = build_weather(scenario.weather, time, seed=scenario.seed, base_dir=scenario.base_dir)
    profiles = simulate_profiles(population, weather, seed=scenario.seed,
                                 country=scenario.time.country)
    return profiles.assign_coords(time=time.values)


def make_design(scenario: Scenario, profiles: xr.Dataset, event_h: float = 2.0) -> xr.Dataset:
    head = pd.Series(profiles["p_kw"].sum("customer").values, index=profiles.get_index("time"))
    peaks = head.groupby(head.index.normalize()).max()
    days = peaks.sort_values(ascending=False).index[: scenario.time.design_days].sort_values()
    mask = head.index.normalize().isin(days)
    steps = np.flatnonzero(mask)
    event = np.zeros(len(steps), bool)
    for day in days:
        in_day = head.index[steps].normalize() == day
        peak_time = head[head.index.normalize() == day].idxmax()
        hours = (head.index[steps] - peak_time) / pd.Timedelta(hours=1)
        event |= in_day & (np.abs(hours) < event_h / 2 - 1e-9)
    return xr.Dataset(
        {"base_kw": ("time", head.to_numpy()[steps], {"units": "kW"}),
         "event": ("time", event, {"units": "bool"})},
        coords={"time": head.index[steps].values},
        attrs={"step_h": scenario.time.step_min / 60.0, "season_scale": 90.0 / scenario.time.days},
    )


@lru_cache(maxsize=4)
def _case(seed: int, count: int):
    from customers.credit import assess_credit
    from customers.population import build_population
    from customers.satisfaction import baseline_satisfaction

    scenario = make_scenario(seed=seed, customers={"count": count, "ev_share": 0.3,
                                                   "heat_pump_share": 0.3})
    population = build_population(scenario, net())
    profiles = simulate(scenario, population)
    population = assess_credit(population, scenario)
    population = baseline_satisfaction(population, scenario)
    return scenario, population, profiles, make_design(scenario, profiles)


def feeder_case(seed: int = 7, count: int = 120):
    """(scenario, population with credit and satisfaction, profiles, design) — cached."""
    return _case(seed, count)
