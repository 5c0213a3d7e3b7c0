"""Feeder-peak forecasts of a scenario: the contract the event calls rely on, and no foresight."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from scenarios.errors import InputError

SHORT_HISTORY_DAYS = 240  # 120 to train + 56 to calibrate + 49 evaluated before a 7-day window


@pytest.fixture(scope="module")
def small_feeder(make_scenario):
    """CIGRE LV, one winter week at hourly steps, 30 customers; built once."""
    from scenarios.feeder import build_feeder
    from scenarios.load import load_scenario

    path = make_scenario({"time": {"days": 7, "step_min": 60, "start": "2016-01-11"},
                          "customers": {"count": 30}})
    scenario = load_scenario(str(path))
    return scenario, build_feeder(scenario)


@pytest.fixture(scope="module")
def window_forecast(small_feeder):
    from scenarios.forecasting import forecast_window_peaks

    scenario, feeder = small_feeder
    return forecast_window_peaks(scenario, feeder, history_days=SHORT_HISTORY_DAYS)


def test_contract_fields(small_feeder, window_forecast):
    from sim.forecast import DailyPeakForecast

    scenario, feeder = small_feeder
    f = window_forecast
    assert isinstance(f, DailyPeakForecast)
    assert dataclasses.is_dataclass(f) and f.__dataclass_params__.frozen
    expected_days = pd.date_range(str(scenario.time.start), periods=7, freq="D")
    assert f.day.equals(expected_days)
    for name in ("p10_kw", "p50_kw", "p90_kw", "actual_kw"):
        values = getattr(f, name)
        assert isinstance(values, np.ndarray) and values.shape == (7,)
        assert np.isfinite(values).all(), name
    assert np.all(f.p10_kw <= f.p50_kw) and np.all(f.p50_kw <= f.p90_kw)
    # The actual peak is the window's simulated feeder-head peak of that day.
    head = pd.Series(feeder.before["p_slack_mw"].values * 1000.0, index=feeder.time)
    np.testing.assert_allclose(f.actual_kw, head.groupby(head.index.normalize()).max().to_numpy(),
                               rtol=1e-12)
    assert f.window.days == 7 and f.evaluation.days == 56
    assert 0.0 <= f.top_k_hit_rate <= 1.0


def test_history_reproduces_the_window_when_pointed_at_it(small_feeder):
    """The streamed history simulator gives the window's own load-element totals."""
    from scenarios.forecasting import history_population
    from sim.history import simulate_element_load

    scenario, feeder = small_feeder
    element = feeder.incidence.tocsc().indices
    load = simulate_element_load(
        history_population(feeder.population), feeder.weather, seed=scenario.seed,
        country=scenario.time.country, element=element, element_count=feeder.incidence.shape[0],
        scale=feeder.population["size_factor"].values, chunk_customers=7,
    )
    expected = np.asarray(feeder.incidence @ feeder.profiles["p_kw"].values)
    np.testing.assert_allclose(load.p_kw, expected, rtol=1e-9, atol=1e-9)


def test_too_short_history_names_the_field(small_feeder):
    from scenarios.forecasting import forecast_window_peaks

    scenario, feeder = small_feeder
    with pytest.raises(InputError, match="history_days"):
        forecast_window_peaks(scenario, feeder, history_days=60)
