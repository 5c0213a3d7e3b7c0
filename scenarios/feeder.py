"""The simulated feeder: network, customers, weather and loads, aggregated onto the net's loads.

This is the "scenario → customers → sim" half of the pipeline. It owns the mapping from
customers to the net's load elements (one sparse incidence matrix) so that every later stage
(power flow before, offer evaluation after) aggregates the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from scenarios.errors import InputError
from scenarios.load import resolve_input_path
from scenarios.schema import DESIGN_FORECAST_MIN_DAYS, Scenario, TimeConfig
from sim.dataset import validate

SEASON_DAYS = 91.0
"""Length of the contract season the money of an offer is counted over [days]."""


@dataclass
class FeederModel:
    """Everything simulated before any offer is made."""

    scenario: Scenario
    net: object                   # pandapowerNet
    time: pd.DatetimeIndex
    step_h: float
    population: xr.Dataset        # [customer]
    weather: xr.Dataset           # [time]
    profiles: xr.Dataset          # [customer, time]
    incidence: sp.csr_matrix      # [load element position, customer] → 1
    sgen_p_mw: np.ndarray         # [time, sgen]
    before: xr.Dataset | None = None  # power flow of the simulated loads [time, ...]

    def load_injections(self, p_kw: np.ndarray, q_kvar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Customer loads [customer, time] in kW/kvar → load element arrays [time, load] in MW/Mvar."""
        p = np.asarray(self.incidence @ p_kw).T / 1000.0
        q = np.asarray(self.incidence @ q_kvar).T / 1000.0
        return np.ascontiguousarray(p), np.ascontiguousarray(q)


def simulation_time(config: TimeConfig) -> pd.DatetimeIndex:
    """Naive local time stamps of the simulated window."""
    steps = config.days * 24 * 60 // config.step_min
    return pd.date_range(pd.Timestamp(config.start), periods=steps, freq=f"{config.step_min}min")


def build_feeder(scenario: Scenario, progress: Callable[[str], None] | None = None) -> FeederModel:
    """Load the network, build customers, simulate weather and loads, size them to the net,
    score credit, run the power flow of the simulated loads and score baseline satisfaction."""
    from customers.credit import assess_credit
    from customers.satisfaction import baseline_satisfaction, customer_voltage
    from sim.network import load_network
    from sim.profiles import simulate_profiles
    from sim.weather import build_weather

    report = progress or (lambda stage: None)
    time = simulation_time(scenario.time)
    step_h = scenario.time.step_min / 60.0

    report("loading network")
    source = scenario.network.source
    if source.startswith("file:"):
        path = resolve_input_path(scenario, Path(source.removeprefix("file:")), "network.source")
        source = f"file:{path}"
    net = load_network(source, base_dir=scenario.base_dir)

    report("building customers")
    measured = None
    if scenario.customers.source == "meter":
        from scenarios.meter_loads import read_measured

        measured = read_measured(scenario, net, time)
        population = measured.population
    else:
        population = _build_population(scenario, net)
    incidence = _incidence(population, net)
    report("simulating weather and loads")
    weather_config = scenario.weather
    if weather_config.file is not None:
        weather_config = weather_config.model_copy(
            update={"file": resolve_input_path(scenario, weather_config.file, "weather.file")}
        )
    weather = build_weather(weather_config, time, seed=scenario.seed, base_dir=scenario.base_dir)
    profiles = simulate_profiles(
        population, weather, seed=scenario.seed, country=scenario.time.country
    )
    if scenario.customers.source == "synthetic" and scenario.customers.size_to_network:
        population, profiles = _size_to_network(population, profiles, net)
    if measured is not None:
        from scenarios.meter_loads import apply_measured

        population, profiles = apply_measured(measured, population, profiles, net)

    report("scoring credit")
    bill = _monthly_bill_eur(scenario, profiles, step_h)
    history = None
    if scenario.credit.history_file is not None:
        from customers.payment_history import read_payment_history_csv

        history = read_payment_history_csv(
            resolve_input_path(scenario, scenario.credit.history_file, "credit.history_file"),
            population,
        )
    population = assess_credit(population, scenario, monthly_bill_eur=bill, history=history)
    feeder = FeederModel(
        scenario=scenario,
        net=net,
        time=time,
        step_h=step_h,
        population=population,
        weather=weather.assign_coords(time=time),
        profiles=profiles.assign_coords(time=time),
        incidence=incidence,
        sgen_p_mw=_sgen_dispatch(scenario, net, weather, time),
    )
    report("power flow (before)")
    feeder.before = run_feeder_powerflow(feeder)
    vm_customer = customer_voltage(population, feeder.before["vm_pu"])
    feeder.population = validate(
        baseline_satisfaction(population, scenario, vm_pu=vm_customer, profiles=feeder.profiles),
        stage="customers",
    )
    return feeder


def _build_population(scenario: Scenario, net) -> xr.Dataset:
    from customers.io import read_customers_csv
    from customers.population import build_population

    if scenario.customers.source == "file":
        assert scenario.customers.file is not None
        path = resolve_input_path(scenario, scenario.customers.file, "customers.file")
        population = read_customers_csv(path, net)
    else:
        population = build_population(scenario, net)
    if population.sizes.get("customer", 0) == 0:
        raise InputError("customers: the population is empty")
    return population


def _incidence(population: xr.Dataset, net) -> sp.csr_matrix:
    """Sparse [load element, customer] matrix; customers without a load element get one added."""
    loads = population["load"].values.astype(np.int64)
    missing = loads < 0
    if missing.any():
        from sim.network import ensure_loads

        buses = population["bus"].values[missing]
        loads = loads.copy()
        loads[missing] = ensure_loads(net, buses)
        population["load"] = population["load"].copy(data=loads)
    positions = pd.Index(net.load.index).get_indexer(loads)
    if (positions < 0).any():
        bad = population["customer"].values[positions < 0][0]
        raise InputError(f"customers: customer {bad} refers to a load element the net lacks")
    n = population.sizes["customer"]
    return sp.csr_matrix(
        (np.ones(n), (positions, np.arange(n))), shape=(len(net.load.index), n)
    )


def _size_to_network(
    population: xr.Dataset, profiles: xr.Dataset, net
) -> tuple[xr.Dataset, xr.Dataset]:
    """Scale each load element's customers so their coincident peak equals its rated p_mw.

    The archetypes give realistic shapes and diversity; the feeder's designers sized each load
    element (and the lines feeding it) for its rated power, so matching it keeps line and
    transformer loading in a realistic range. The factor is kept as `size_factor`.
    """
    from customers.population import size_to_network

    factor = size_to_network(population, profiles, net).values
    scaled = profiles.copy()
    for name in ("p_kw", "q_kvar", "flexible_kw", "pv_kw"):
        if name in scaled:
            scaled[name] = scaled[name] * factor[:, None]
            scaled[name].attrs = profiles[name].attrs
    sized = population.copy()
    for name in ("annual_kwh", "pv_kwp", "ev_kwh_per_day", "heat_kw_per_degc", "ac_kw_per_degc"):
        if name in sized:
            sized[name] = sized[name] * factor
            sized[name].attrs = population[name].attrs
    sized["size_factor"] = ("customer", factor, {"units": "1", "long_name": "network sizing factor"})
    return sized, scaled


def _monthly_bill_eur(scenario: Scenario, profiles: xr.Dataset, step_h: float) -> np.ndarray:
    """Each customer's monthly bill on the current tariff [EUR], from the simulated window."""
    from customers.response import step_prices

    tariff = next(t for t in scenario.offers.tariffs if t.name == scenario.offers.current_tariff)
    hours = profiles["time"].dt.hour.values + profiles["time"].dt.minute.values / 60.0
    price = step_prices(hours, tariff)
    imports = np.clip(profiles["p_kw"].values, 0.0, None)
    window_eur = imports @ price * step_h
    days = profiles.sizes["time"] * step_h / 24.0
    return window_eur * (30.4 / days) + tariff.fixed_eur_per_month


def _sgen_dispatch(scenario: Scenario, net, weather: xr.Dataset, time: pd.DatetimeIndex) -> np.ndarray:
    """Static generators of the net itself [time, sgen] in MW (see `NetworkConfig.sgen_dispatch`)."""
    sgen = net.sgen
    mode = scenario.network.sgen_dispatch
    if len(sgen) == 0 or mode == "off":
        return np.zeros((len(time), len(sgen)))
    static = (sgen["p_mw"] * sgen["scaling"] * sgen["in_service"]).to_numpy(dtype=np.float64)
    if mode == "auto":
        mode = "profiles" if _has_sgen_profiles(net) else "weather"
    if mode == "rated":
        return np.tile(static, (len(time), 1))
    if mode == "profiles":
        if not _has_sgen_profiles(net):
            raise InputError("network.sgen_dispatch: 'profiles' needs a SimBench net with "
                             "renewables profiles")
        return _profile_factors(net.profiles["renewables"], sgen["profile"], time) * static
    types = sgen["type"].astype(str).str.lower() if "type" in sgen else pd.Series("", index=sgen.index)
    is_pv = types.str.contains("pv").to_numpy()
    sn = sgen["sn_mva"].fillna(0).to_numpy(dtype=np.float64) if "sn_mva" in sgen else np.zeros(len(sgen))
    rated = np.where(sn > 0, sn, sgen["p_mw"].to_numpy()) * sgen["in_service"].to_numpy()
    pv = weather["pv_factor"].values[:, None] * rated[None, :]
    return np.where(is_pv[None, :], pv, static[None, :])


def _has_sgen_profiles(net) -> bool:
    profiles = getattr(net, "profiles", None)
    return (isinstance(profiles, dict) and "renewables" in profiles and "profile" in net.sgen
            and net.sgen["profile"].isin(profiles["renewables"].columns).all())


def _profile_factors(table: pd.DataFrame, names: pd.Series, time: pd.DatetimeIndex) -> np.ndarray:
    """SimBench profile values [time, element] at the same calendar date and time of day.

    SimBench profiles are one year (2016, a leap year) at 15 min on the German wall clock: a
    window of any year reads the same month, day and quarter hour of the table put on the naive
    clock by `sim.shapes.on_naive_clock` (the hour skipped in spring interpolated, the first
    pass of the hour repeated in autumn).
    """
    from sim.shapes import on_naive_clock

    columns = names.to_list()
    stamps = pd.DatetimeIndex(pd.to_datetime(table["time"], format="%d.%m.%Y %H:%M"))
    values = on_naive_clock(stamps, table[columns].to_numpy(dtype=np.float64), columns)
    # The table's 2016 row of each step: same month, day and quarter hour.
    wanted = pd.to_datetime(time.floor("15min").strftime("2016-%m-%d %H:%M"))
    rows = values.index.get_indexer(wanted)
    found = rows >= 0
    found[found] = ~np.isnan(values.to_numpy()[rows[found]]).any(axis=1)
    if not found.all():
        first = time[np.flatnonzero(~found)[0]]
        raise InputError(f"network: the SimBench profiles do not cover the simulated window "
                         f"(no profile value for {first:%Y-%m-%d %H:%M})")
    return values.to_numpy()[rows]


def run_feeder_powerflow(
    feeder: FeederModel, p_kw: np.ndarray | None = None, q_kvar: np.ndarray | None = None,
    steps: np.ndarray | None = None,
) -> xr.Dataset:
    """AC power flow of the customers' loads (default: the simulated ones) on the feeder.

    Parameters
    ----------
    p_kw, q_kvar
        Customer loads [customer, time(steps)]; defaults to the simulated profiles.
    steps
        Positions of the simulated time steps these loads belong to (default: all).
    """
    from sim.powerflow import run_timeseries

    if p_kw is None:
        p_kw = feeder.profiles["p_kw"].values
        q_kvar = feeder.profiles["q_kvar"].values
    assert q_kvar is not None
    if steps is None:
        steps = np.arange(len(feeder.time))
    if feeder.scenario.network.phases == "unbalanced":
        from scenarios.unbalanced import run_unbalanced_powerflow

        return run_unbalanced_powerflow(feeder, p_kw, q_kvar, steps)
    load_p, load_q = feeder.load_injections(p_kw, q_kvar)
    result = run_timeseries(feeder.net, load_p, load_q, feeder.sgen_p_mw[steps])
    return result.assign_coords(time=feeder.time[steps])


def hours_from_daily_peak(head_kw: pd.Series, days: pd.DatetimeIndex) -> np.ndarray:
    """Signed hours from each listed day's feeder peak, for every step [h]; NaN on other days."""
    day_of_step = head_kw.index.normalize()
    hours = np.full(len(head_kw), np.nan)
    for day in days:
        in_day = np.asarray(day_of_step == day)
        peak_time = head_kw[in_day].idxmax()
        hours[in_day] = (head_kw.index[in_day] - peak_time) / pd.Timedelta(hours=1)
    return hours


def event_mask(scenario: Scenario, hours_from_peak: np.ndarray) -> np.ndarray:
    """Steps inside the longest contract's event window, centred on the day's peak."""
    longest = max((c.event_h for c in scenario.offers.curtailment), default=0.0)
    with np.errstate(invalid="ignore"):
        return np.abs(hours_from_peak) < longest / 2.0 - 1e-9


def feeder_head_kw(feeder: FeederModel) -> pd.Series:
    """Feeder-head active load of the simulated loads [kW], indexed by time."""
    assert feeder.before is not None
    return pd.Series(feeder.before["p_slack_mw"].values * 1000.0, index=feeder.time)


def build_design(scenario: Scenario, feeder: FeederModel, days: pd.DatetimeIndex | None = None,
                 selection: dict[str, str | float] | None = None) -> xr.Dataset:
    """The design steps the optimizer plans for: every step of the design days.

    By default the `design_days` peak days (`_design_days`); the planning rounds
    (`scenarios.planning`) pass the days they grew the set to, so that every day on which the
    plan's window peak could fall is in it. The ``event`` variable marks, on each design day, a
    window centred on that day's feeder peak (``hours_from_peak``) for code that plans without a
    dispatch.
    """
    head_kw = feeder_head_kw(feeder)
    if days is None:
        days, selection = _design_days(scenario, feeder, head_kw)
    days = pd.DatetimeIndex(days).sort_values()
    selection = selection or {}
    hours = hours_from_daily_peak(head_kw, days)
    steps = np.flatnonzero(~np.isnan(hours))
    design = xr.Dataset(
        {
            "base_kw": ("time", head_kw.to_numpy()[steps], {"units": "kW",
                                                            "long_name": "feeder-head load"}),
            "event": ("time", event_mask(scenario, hours[steps]),
                      {"units": "bool", "long_name": "curtailment event step"}),
            "hours_from_peak": ("time", hours[steps], {"units": "h",
                                                       "long_name": "hours from the day's peak"}),
            "step": ("time", steps.astype(np.int64), {"units": "1",
                                                      "long_name": "position in the window"}),
        },
        coords={"time": feeder.time[steps]},
        attrs={
            "step_h": feeder.step_h,
            "season_days": scenario.dispatch.season_days,
            "season_scale": scenario.dispatch.season_days / scenario.time.days,
            "design_days": [str(d.date()) for d in days],
            **selection,
        },
    )
    if scenario.limits.trafo_loading_max_pct < UNCONSTRAINED_PCT:
        design = design.merge(_trafo_design(scenario, feeder, steps))
    return validate(design, stage="design")


def _design_days(scenario: Scenario, feeder: FeederModel,
                 head_kw: pd.Series) -> tuple[pd.DatetimeIndex, dict[str, str | float]]:
    """The design days (calendar order) and how they were chosen (attrs of the design).

    By forecast (`time.design_days_from`): the days whose out-of-sample day-ahead forecast peak
    is highest, with the forecast's accuracy on the simulated days recorded; otherwise, or when
    the window is too short to train a forecast or a step did not converge, the simulated peaks.
    """
    count = scenario.time.design_days
    n_days = head_kw.index.normalize().nunique()
    wanted = scenario.time.design_days_from == "forecast"
    if wanted and n_days >= DESIGN_FORECAST_MIN_DAYS and np.isfinite(head_kw.to_numpy()).all():
        from sim.forecast import forecast_day_ahead, pick_design_days

        temperature = pd.Series(feeder.weather["temperature_c"].values, index=head_kw.index)
        forecast = forecast_day_ahead(head_kw, temperature, country=scenario.time.country,
                                      seed=scenario.seed)
        return pd.DatetimeIndex(pick_design_days(forecast, count)), {
            "design_days_from": "forecast",
            "forecast_mape_pct": forecast.mape_pct,
            "forecast_bias_pct": forecast.bias_pct,
            "forecast_peak_error_pct": forecast.peak_error_pct,
        }
    daily_peak = head_kw.groupby(head_kw.index.normalize()).max()
    days = daily_peak.sort_values(ascending=False, kind="stable").index[:count].sort_values()
    how = "simulation"
    if wanted:
        how += f" (forecast needs {DESIGN_FORECAST_MIN_DAYS} converged days; {n_days} simulated)"
    return days, {"design_days_from": how}


UNCONSTRAINED_PCT = 1000.0
"""`limits.trafo_loading_max_pct` at or above this leaves transformers out of the optimizer."""


def _trafo_design(scenario: Scenario, feeder: FeederModel, steps: np.ndarray) -> xr.Dataset:
    """Transformer rows for the optimizer, linearised in active power.

    A transformer's loading is apparent power over rating. With ``cos φ_r`` the power factor of
    the load downstream of transformer ``r`` at its most loaded design step, the loading limit
    becomes ``P_base[t, r] + ΔP[t, r] ≤ limit_pct/100 · S_n,r · cos φ_r`` where
    ``P_base = loading_pct/100 · S_n,r · cos φ_r`` is the base case in the same scale — exact at
    that step for a change at constant power factor, and re-checked by the full power flow of
    the evaluation. A customer loads every transformer on its path to the slack.
    """
    from sim.topology import feeding_trafo

    net = feeder.net
    feeds = feeding_trafo(net)
    trafo_index = pd.Index(net.trafo.index)
    parent = {int(r): int(feeds.get(int(net.trafo.at[r, "hv_bus"]), -1)) for r in trafo_index}
    bus = feeder.population["bus"].values
    share = np.zeros((len(bus), len(trafo_index)))
    for i, b in enumerate(bus):
        r = int(feeds.get(int(b), -1))
        while r >= 0:
            share[i, trafo_index.get_loc(r)] = 1.0
            r = parent[r]
    loading = feeder.before["trafo_loading_pct"].values[steps]  # [t, r]
    p_down = feeder.profiles["p_kw"].values[:, steps].T @ share   # [t, r]
    q_down = feeder.profiles["q_kvar"].values[:, steps].T @ share
    worst = np.nanargmax(np.nan_to_num(loading, nan=-1.0), axis=0)
    cols = np.arange(len(trafo_index))
    s_down = np.hypot(p_down[worst, cols], q_down[worst, cols])
    cos_phi = np.where(s_down > 1e-9, np.abs(p_down[worst, cols]) / np.maximum(s_down, 1e-9), 1.0)
    sn_kw = net.trafo["sn_mva"].to_numpy() * 1000.0 * cos_phi
    base = np.nan_to_num(loading, nan=0.0) / 100.0 * sn_kw[None, :]
    return xr.Dataset(
        {
            "trafo_base_kw": (("time", "trafo"), base, {"units": "kW",
                                                        "long_name": "loading as active power"}),
            "trafo_share": (("customer", "trafo"), share, {"units": "1",
                                                           "long_name": "customer behind trafo"}),
            "trafo_limit_kw": ("trafo", scenario.limits.trafo_loading_max_pct / 100.0 * sn_kw,
                               {"units": "kW"}),
        },
        coords={"time": feeder.time[steps], "trafo": trafo_index.to_numpy(),
                "customer": feeder.population["customer"].values},
    )
