"""M&V baselines on simulated loads: accuracy on non-event days, recovered event reductions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.schema import WeatherConfig
from sim.baseline import (
    EventWindow,
    average_x_of_y,
    baseline_accuracy,
    estimated_reduction_kw,
    weather_regression,
)
from sim.calendar import WEEKDAY, day_types_of_dates
from sim.profiles import simulate_profiles
from sim.weather import build_weather
from tests.sim.population_factory import make_population

BIAS_MAX_PCT = 5.0             # |bias| over non-event days, 10-in-10 adjusted and regression
CV_RMSE_MAX_PCT = 15.0         # feeder total of the window
REDUCTION_RTOL = 0.25          # estimated vs injected mean reduction
STEPS_PER_DAY = 24
WINDOW = EventWindow(start=17, stop=20, adjustment_steps=3, buffer_steps=1)
SHED_KW = 0.4


@pytest.fixture(scope="module")
def case():
    time = pd.date_range("2016-01-04", periods=91 * 24, freq="h")
    weather = build_weather(WeatherConfig(), time, seed=5, base_dir=Path("."))
    population = make_population(80, seed=2, ev_share=0.1, heat_pump_share=0.3, pv_share=0.0)
    load = simulate_profiles(population, weather, seed=6, country="DE")["p_kw"].values
    days = pd.date_range("2016-01-04", periods=91, freq="D")
    eligible = day_types_of_dates(days, "DE") == WEEKDAY
    event = np.zeros(91, dtype=bool)
    event[[30, 37, 44, 51, 58, 65, 72, 79]] = True
    assert eligible[event].all()
    shed = np.zeros_like(load)
    for d in np.flatnonzero(event):
        sl = slice(d * 24 + WINDOW.start, d * 24 + WINDOW.stop)
        shed[:, sl] = np.minimum(SHED_KW, load[:, sl])
    injected = shed.reshape(80, 91, 24)[:, event, WINDOW.start:WINDOW.stop].sum(axis=0).mean()
    return load - shed, weather["temperature_c"].values, eligible, event, injected


def test_ten_in_ten_with_adjustment(case):
    load, _, eligible, event, injected = case
    baseline = average_x_of_y(load, STEPS_PER_DAY, eligible, event, WINDOW)
    scored = eligible & ~event
    accuracy = baseline_accuracy(load, baseline, STEPS_PER_DAY, scored, WINDOW)
    assert accuracy["days"] >= 40
    assert abs(accuracy["bias_pct"]) < BIAS_MAX_PCT
    assert accuracy["cv_rmse_pct"] < CV_RMSE_MAX_PCT
    reduction = estimated_reduction_kw(load, baseline, STEPS_PER_DAY, event, WINDOW).mean()
    assert reduction == pytest.approx(injected, rel=REDUCTION_RTOL)


def test_high_five_of_ten_overestimates(case):
    load, _, eligible, event, _ = case
    scored = eligible & ~event
    plain = average_x_of_y(load, STEPS_PER_DAY, eligible, event, WINDOW, adjust=False)
    high = average_x_of_y(load, STEPS_PER_DAY, eligible, event, WINDOW, x=5, y=10,
                          highest=True, adjust=False)
    bias_plain = baseline_accuracy(load, plain, STEPS_PER_DAY, scored, WINDOW)["bias_pct"]
    bias_high = baseline_accuracy(load, high, STEPS_PER_DAY, scored, WINDOW)["bias_pct"]
    assert bias_high > bias_plain  # picking the highest days biases upwards by construction


def test_weather_regression(case):
    load, temperature, eligible, event, injected = case
    baseline = weather_regression(load, STEPS_PER_DAY, temperature, eligible, event)
    accuracy = baseline_accuracy(load, baseline, STEPS_PER_DAY, eligible & ~event, WINDOW)
    assert abs(accuracy["bias_pct"]) < BIAS_MAX_PCT
    reduction = estimated_reduction_kw(load, baseline, STEPS_PER_DAY, event, WINDOW).mean()
    assert reduction == pytest.approx(injected, rel=REDUCTION_RTOL)


def test_no_history_gives_nan_and_partial_days_are_refused():
    load = np.ones((2, 24 * 3))
    baseline = average_x_of_y(load, 24, np.ones(3, bool), np.zeros(3, bool), WINDOW)
    assert np.isnan(baseline).all()
    with pytest.raises(ValueError, match="whole days"):
        average_x_of_y(np.ones((1, 30)), 24, np.ones(1, bool), np.zeros(1, bool), WINDOW)
