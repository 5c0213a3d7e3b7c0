"""Day-ahead forecasts of simulated feeder and customer loads, and design-day choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.errors import InputError
from scenarios.schema import WeatherConfig
from sim.forecast import forecast_customers, forecast_day_ahead, pick_design_days
from sim.profiles import simulate_aggregate, simulate_profiles
from sim.weather import build_weather
from tests.sim.population_factory import make_population

FEEDER_MAPE_MAX_PCT = 8.0   # 200 customers, hourly, 10 winter weeks
FEEDER_BIAS_MAX_PCT = 2.0
CUSTOMER_MEDIAN_WAPE_MAX_PCT = 60.0  # single households are mostly noise a day ahead
SUMMED_WAPE_MAX_PCT = 15.0           # the customers' forecasts added up


@pytest.fixture(scope="module")
def winter():
    time = pd.date_range("2016-01-04", periods=70 * 24, freq="h")
    weather = build_weather(WeatherConfig(), time, seed=3, base_dir=Path("."))
    population = make_population(200, seed=1, ev_share=0.2, heat_pump_share=0.3, pv_share=0.0)
    load = simulate_aggregate(population, weather, seed=2, country="DE")
    feeder = pd.Series(load.total_kw[0], index=time)
    result = forecast_day_ahead(feeder, weather["temperature_c"].to_series(), country="DE")
    return population, weather, feeder, result


def test_feeder_forecast_accuracy_on_held_out_days(winter):
    _, weather, feeder, result = winter
    assert result.mape_pct < FEEDER_MAPE_MAX_PCT
    assert abs(result.bias_pct) < FEEDER_BIAS_MAX_PCT
    # Better than the naive "same hour last week" forecast on the same steps.
    naive = feeder.shift(7 * 24)
    ok = naive.notna()
    naive_mape = float(np.mean(np.abs(naive[ok] - feeder[ok]) / feeder[ok]) * 100)
    assert result.mape_pct < naive_mape


def test_design_days_are_the_forecast_peaks(winter):
    _, weather, feeder, result = winter
    days = pick_design_days(result, 3)
    assert len(days) == 3 and days == sorted(days)
    actual_peaks = feeder.groupby(feeder.index.normalize()).max()
    # The chosen days are among the actual top decile of peak days.
    assert all(actual_peaks[d] >= actual_peaks.quantile(0.8) for d in days)
    with pytest.raises(InputError, match="design_days"):
        pick_design_days(result, 999)


def test_customer_forecasts(winter):
    population, weather, _, _ = winter
    few = population.isel(customer=slice(0, 12))
    week = weather.isel(time=slice(0, 14 * 24))
    ds = simulate_profiles(few, week, seed=2, country="DE")
    forecast, accuracy = forecast_customers(ds["p_kw"].values, pd.DatetimeIndex(ds["time"].values),
                                            week["temperature_c"].values, country="DE", folds=3)
    assert forecast.shape == ds["p_kw"].shape
    assert np.isfinite(forecast).all()
    assert accuracy["wape_pct"].median() < CUSTOMER_MEDIAN_WAPE_MAX_PCT
    total = ds["p_kw"].values.sum(axis=0)
    summed_wape = np.abs(forecast.sum(axis=0) - total).sum() / np.abs(total).sum() * 100
    assert summed_wape < SUMMED_WAPE_MAX_PCT


def test_mismatched_inputs():
    time = pd.date_range("2016-01-01", periods=48, freq="h")
    with pytest.raises(InputError):
        forecast_day_ahead(pd.Series(1.0, index=time), pd.Series(1.0, index=time[:10]), country="DE")
