"""Feeder-peak forecasting of a scenario: simulated history, forecast weather, rolling origin.

The window a scenario simulates is often a week: too short to train a forecaster. So the same
customers (same ids, seed and sizing) are simulated over `HISTORY_DAYS` before the window on
weather of the same climate, streamed chunk by chunk onto the net's load elements
(`sim.history`), and put through the same AC power flow; its feeder-head series followed by the
window's is what the forecaster sees. Each day is forecast at an origin before it from the data
before the origin and forecast weather (`sim.weather_forecast`), the model refit on an expanding
window (`sim.forecast.forecast_daily_peaks`).

The history's weather is a separate draw of the climate (seed stream `HISTORY_SEED_OFFSET`; a
weather file covering only the window is replaced by the synthetic climate there), so at the
window's first midnight the weather jumps from one draw to the other, as a front would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from scenarios.errors import InputError
from scenarios.feeder import FeederModel, feeder_head_kw
from scenarios.schema import Scenario
from sim.forecast import (
    DailyPeakForecast,
    PeakForecastConfig,
    PeakForecastTable,
    forecast_daily_peaks,
)

HISTORY_DAYS = 365
"""Days simulated before the window to train on [days]."""
EVALUATION_DAYS = 56
"""Shortest period the metrics are computed over: the window, extended back into the history
when it is shorter, so that an 80 % band's coverage is measured on more than a handful of days."""
HISTORY_SEED_OFFSET = 0x4157
# The population fields `scenarios.feeder._size_to_network` multiplied by the sizing factor.
_SIZED_FIELDS = ("annual_kwh", "pv_kwp", "ev_kwh_per_day", "heat_kw_per_degc", "ac_kw_per_degc")


@dataclass(frozen=True)
class FeederHistory:
    """The simulated period before the window."""

    time: pd.DatetimeIndex
    head_kw: pd.Series        # feeder-head active power [kW]
    weather: xr.Dataset       # temperature_c, ghi_w_m2, pv_factor [time]
    sgen_p_mw: np.ndarray     # the net's own generators [time, sgen] [MW]


@dataclass(frozen=True)
class FeederForecast:
    """Rolling-origin forecasts over history + window, and which days are which."""

    table: PeakForecastTable
    head_kw: pd.Series        # history then window [kW]
    window: np.ndarray        # day positions of the window in the table
    evaluation: np.ndarray    # day positions the metrics are computed over
    history_days: int
    top_k: int


def history_population(population: xr.Dataset) -> xr.Dataset:
    """The population with its network sizing undone (the profile kernel's own inputs)."""
    if "size_factor" not in population:
        return population
    factor = population["size_factor"].values
    unsized = population.copy()
    for name in _SIZED_FIELDS:
        if name in unsized:
            unsized[name] = unsized[name] / factor
            unsized[name].attrs = population[name].attrs
    return unsized


def simulate_history(scenario: Scenario, feeder: FeederModel, days: int) -> FeederHistory:
    """Simulate ``days`` before the window: weather, loads (streamed) and the power flow.

    Memory: the customers are simulated 32 at a time and summed onto the net's load elements;
    only ``[load element, time]`` and the power flow's ``[time, bus/branch]`` are ever whole.
    """
    from scenarios.feeder import _sgen_dispatch
    from sim.history import simulate_element_load
    from sim.powerflow import run_timeseries
    from sim.weather import build_weather

    step = pd.Timedelta(minutes=scenario.time.step_min)
    steps = int(days * pd.Timedelta(days=1) / step)
    time = pd.date_range(feeder.time[0] - days * pd.Timedelta(days=1), periods=steps, freq=step)
    config = scenario.weather.model_copy(update={"source": "synthetic", "file": None})
    weather = build_weather(config, time, seed=scenario.seed + HISTORY_SEED_OFFSET,
                            base_dir=scenario.base_dir)
    population = feeder.population
    scale = population["size_factor"].values if "size_factor" in population else None
    element = feeder.incidence.tocsc().indices  # one load element per customer column
    load = simulate_element_load(
        history_population(population), weather, seed=scenario.seed,
        country=scenario.time.country, element=element, element_count=feeder.incidence.shape[0],
        scale=scale,
    )
    sgen = _sgen_dispatch(scenario, feeder.net, weather, _profile_lookup_time(feeder.net, time))
    flow = run_timeseries(feeder.net, np.ascontiguousarray(load.p_kw.T / 1000.0),
                          np.ascontiguousarray(load.q_kvar.T / 1000.0), sgen)
    head = flow["p_slack_mw"].values * 1000.0
    converged = flow["converged"].values.astype(bool)
    head = np.where(converged, head, np.nan)
    return FeederHistory(time, pd.Series(head, index=time), weather, sgen)


def _profile_lookup_time(net, time: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """``time`` with the stamps a SimBench profile year lacks moved to the next hour it has.

    The profiles are one year (2016) on its local clock, so they skip the hour of 2016's spring
    DST change (27 March 02:00); another year's history asks for it. Only the profile lookup
    sees the moved stamps.
    """
    profiles = getattr(net, "profiles", None)
    if not isinstance(profiles, dict) or "renewables" not in profiles:
        return time
    stamps = pd.to_datetime(profiles["renewables"]["time"], format="%d.%m.%Y %H:%M")
    have = pd.Index(stamps.dt.strftime("%m-%d %H:%M").unique())
    lookup = time.copy()
    for _ in range(2):
        missing = ~pd.Index(lookup.strftime("%m-%d %H:%M")).isin(have)
        if not missing.any():
            break
        lookup = pd.DatetimeIndex(np.where(missing, lookup + pd.Timedelta(hours=1), lookup))
    return lookup


@dataclass(frozen=True)
class ForecastInputs:
    """History followed by the window: what the forecaster sees (truth; it forecasts from it)."""

    head_kw: pd.Series          # feeder head [kW], NaN where the power flow did not converge
    temperature_c: np.ndarray   # [time]
    ghi_w_m2: np.ndarray        # [time]
    clear_ghi_w_m2: np.ndarray  # [time]
    generation_kw: np.ndarray   # the net's own generators, total [time] [kW]
    capacity_kw: float          # their largest output, summed [kW]
    history_days: int


def forecast_inputs(scenario: Scenario, feeder: FeederModel,
                    history_days: int = HISTORY_DAYS) -> ForecastInputs:
    """Simulate the history and join it to the window's series."""
    from sim.weather import CLIMATES, clear_sky_ghi

    history = simulate_history(scenario, feeder, history_days)
    converged = feeder.before["converged"].values.astype(bool)
    head = pd.concat([history.head_kw, feeder_head_kw(feeder).where(converged)])
    time = pd.DatetimeIndex(head.index)
    sgen = np.concatenate([history.sgen_p_mw, feeder.sgen_p_mw]) * 1000.0
    return ForecastInputs(
        head_kw=head,
        temperature_c=np.concatenate([history.weather["temperature_c"].values,
                                      feeder.weather["temperature_c"].values]),
        ghi_w_m2=np.concatenate([history.weather["ghi_w_m2"].values,
                                 feeder.weather["ghi_w_m2"].values]),
        clear_ghi_w_m2=clear_sky_ghi(CLIMATES[scenario.weather.climate], time,
                                     scenario.time.step_min / 60.0),
        generation_kw=sgen.sum(axis=1),
        capacity_kw=float(np.clip(sgen, 0.0, None).max(axis=0, initial=0.0).sum()),
        history_days=history_days,
    )


def forecast_from_inputs(inputs: ForecastInputs, *, country: str, seed: int, window_days: int,
                         lead_days: int = 1, top_k: int = 5,
                         config: PeakForecastConfig | None = None) -> FeederForecast:
    """Rolling-origin forecasts at leads 1 .. ``lead_days`` over the evaluation period."""
    from sim.weather_forecast import daily_forecast_weather, daily_weather, forecast_generation

    config = config or PeakForecastConfig(lead_days=lead_days, seed=seed, top_k=top_k)
    time = pd.DatetimeIndex(inputs.head_kw.index)
    forecast_weather = daily_forecast_weather(time, inputs.temperature_c, inputs.ghi_w_m2,
                                              inputs.clear_ghi_w_m2, lead_days=lead_days, seed=seed)
    generation = forecast_generation(time, inputs.generation_kw, inputs.capacity_kw,
                                     lead_days=lead_days, seed=seed)
    observed = daily_weather(time, inputs.temperature_c, inputs.ghi_w_m2)
    back = max(0, EVALUATION_DAYS - window_days)
    evaluation_start = inputs.history_days - back
    table = forecast_daily_peaks(
        inputs.head_kw, forecast_weather, observed, country=country, config=config,
        first_origin=evaluation_start - config.calibration_days,
        generation_kw=inputs.generation_kw, generation_forecast_kw=generation,
    )
    n_days = len(table.day)
    return FeederForecast(table, inputs.head_kw, np.arange(inputs.history_days, n_days),
                          np.arange(evaluation_start, n_days), inputs.history_days, top_k)


def check_history_days(history_days: int, window_days: int,
                       config: PeakForecastConfig | None = None) -> None:
    """Fail early, naming the field, when the history cannot train, calibrate and evaluate."""
    config = config or PeakForecastConfig()
    back = max(0, EVALUATION_DAYS - window_days)
    needed = config.min_train_days + config.calibration_days + back
    if history_days < needed:
        raise InputError(f"history_days: {history_days} days of history, at least {needed} "
                         f"needed ({config.min_train_days} to train, {config.calibration_days} to "
                         f"calibrate the bands, {back} to evaluate)")


def forecast_feeder(scenario: Scenario, feeder: FeederModel, *, lead_days: int = 1,
                    history_days: int = HISTORY_DAYS, top_k: int = 5) -> FeederForecast:
    """Rolling-origin daily-peak forecasts of the feeder head at leads 1 .. ``lead_days``."""
    check_history_days(history_days, int(scenario.time.days))
    inputs = forecast_inputs(scenario, feeder, history_days)
    return forecast_from_inputs(inputs, country=scenario.time.country, seed=scenario.seed,
                                window_days=int(scenario.time.days), lead_days=lead_days,
                                top_k=top_k)


def forecast_window_peaks(scenario: Scenario, feeder: FeederModel, *,
                          history_days: int = HISTORY_DAYS) -> DailyPeakForecast:
    """Day-ahead forecast of each window day's feeder-head peak, issued the day before.

    The forecast of day d uses only the simulated history before the window, the window's days
    before d and forecast weather for d (issued at midnight before d). Metrics: ``window``
    over the window's days, ``evaluation`` over at least `EVALUATION_DAYS` ending with it.
    """
    result = forecast_feeder(scenario, feeder, lead_days=1, history_days=history_days)
    table, w = result.table, result.window
    return DailyPeakForecast(
        day=pd.DatetimeIndex(table.day[w]),
        p10_kw=table.p10_kw[0, w].copy(),
        p50_kw=table.p50_kw[0, w].copy(),
        p90_kw=table.p90_kw[0, w].copy(),
        actual_kw=table.actual_kw[w].copy(),
        naive_kw=table.naive_kw[0, w].copy(),
        linear_kw=table.linear_kw[0, w].copy(),
        peak_hour_forecast=table.peak_hour_forecast[0, w].copy(),
        peak_hour_actual=table.peak_hour_actual[w].copy(),
        window=table.score(w, 1, result.top_k),
        evaluation=table.score(result.evaluation, 1, result.top_k),
        evaluation_start=pd.Timestamp(table.day[result.evaluation[0]]),
    )
