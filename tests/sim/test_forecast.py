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


# --- daily peaks: rolling origin, forecast weather, no foresight ------------------------------

@pytest.fixture(scope="module")
def peak_case():
    """140 days of a 60-customer feeder at hourly steps with its forecast and observed weather."""
    from sim.weather import CLIMATES, clear_sky_ghi
    from sim.weather_forecast import daily_forecast_weather, daily_weather

    time = pd.date_range("2015-10-01", periods=140 * 24, freq="h")
    weather = build_weather(WeatherConfig(), time, seed=5, base_dir=Path("."))
    population = make_population(60, seed=4, ev_share=0.3, heat_pump_share=0.3, pv_share=0.1)
    load = pd.Series(simulate_aggregate(population, weather, seed=6, country="DE").total_kw[0],
                     index=time)
    temperature, ghi = weather["temperature_c"].values, weather["ghi_w_m2"].values
    clear = clear_sky_ghi(CLIMATES["temperate"], time, 1.0)

    def forecast_weather(t, g, lead_days):
        return daily_forecast_weather(time, t, g, clear, lead_days=lead_days, seed=9)

    return load, temperature, ghi, forecast_weather, daily_weather(time, temperature, ghi)


PEAK_CONFIG = dict(min_train_days=60, calibration_days=20, refit_days=5)


@pytest.mark.parametrize("lead_days", [1, 3])
def test_changing_data_after_the_origin_leaves_the_forecast_unchanged(peak_case, lead_days):
    from sim.forecast import PeakForecastConfig, forecast_daily_peaks
    from sim.weather_forecast import daily_weather

    load, temperature, ghi, forecast_weather, observed = peak_case
    config = PeakForecastConfig(lead_days=lead_days, **PEAK_CONFIG)
    before = forecast_daily_peaks(load, forecast_weather(temperature, ghi, lead_days), observed,
                                  country="DE", config=config)
    cut_day = 110
    cut = pd.Timestamp(load.index[0]).normalize() + pd.Timedelta(days=cut_day)
    after_cut = load.index >= cut
    changed_load = load.where(~after_cut, load * 3.0 + 50.0)
    # Weather changes only after the last day forecast from an origin at or before the cut.
    weather_cut = load.index >= cut + pd.Timedelta(days=lead_days)
    t2 = np.where(weather_cut, temperature + 15.0, temperature)
    g2 = np.where(weather_cut, ghi * 0.2, ghi)
    after = forecast_daily_peaks(changed_load, forecast_weather(t2, g2, lead_days),
                                 daily_weather(load.index, t2, g2), country="DE", config=config)
    for k in range(lead_days):
        # Days forecast from origins at or before the cut: target day < cut + lead.
        known = slice(0, cut_day + k + 1)
        for name in ("p10_kw", "p50_kw", "p90_kw", "naive_kw", "linear_kw", "peak_hour_forecast"):
            np.testing.assert_array_equal(getattr(before, name)[k, known],
                                          getattr(after, name)[k, known], err_msg=name)
        # ...and the change does reach the days after (the test can fail).
        assert not np.allclose(before.p50_kw[k, cut_day + k + 1:], after.p50_kw[k, cut_day + k + 1:])


def test_daily_peak_forecasts_beat_seasonal_naive_and_cover(peak_case):
    from sim.forecast import PeakForecastConfig, forecast_daily_peaks

    load, temperature, ghi, forecast_weather, observed = peak_case
    config = PeakForecastConfig(**PEAK_CONFIG)
    table = forecast_daily_peaks(load, forecast_weather(temperature, ghi, 1), observed,
                                 country="DE", config=config)
    scored = np.arange(config.min_train_days + config.calibration_days, len(table.day))
    metrics = table.score(scored)
    assert metrics.days == len(scored)
    assert metrics.mae_kw < metrics.naive_mae_kw
    assert 50.0 <= metrics.coverage_pct <= 100.0
    # Nothing is forecast before the first origin: it only trains.
    assert np.isnan(table.p50_kw[0, : config.min_train_days]).all()


def test_forecast_weather_error_grows_with_lead_time():
    from sim.weather_forecast import WeatherForecastError, issue_forecast

    time = pd.date_range("2016-01-01", periods=7 * 24, freq="h")
    truth = np.zeros(len(time))
    clear = np.full(len(time), 500.0)
    errors = np.array([issue_forecast(time, truth, 0.5 * clear, clear, time[0], seed=s)[0]
                       for s in range(400)])
    spread = errors.std(axis=0)
    model = WeatherForecastError()
    lead = np.arange(len(time)) + 0.5
    np.testing.assert_allclose(spread[:24].mean(), model.temperature_sd(lead[:24]).mean(), rtol=0.15)
    np.testing.assert_allclose(spread[-24:].mean(), model.temperature_sd(lead[-24:]).mean(), rtol=0.15)
    assert spread[-24:].mean() > 1.8 * spread[:24].mean()
    # Same seed and origin → same forecast; another origin → another draw.
    a = issue_forecast(time[24:], truth[24:], clear[24:] * 0.5, clear[24:], time[24], seed=1)
    b = issue_forecast(time[24:], truth[24:], clear[24:] * 0.5, clear[24:], time[24], seed=1)
    c = issue_forecast(time[24:], truth[24:], clear[24:] * 0.5, clear[24:], time[0], seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], c[0])
