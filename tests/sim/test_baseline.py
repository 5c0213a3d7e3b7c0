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


def test_x_of_y_picks_the_right_days_and_caps_the_adjustment_by_hand():
    """One customer, 4 steps a day ``[a, 1, w, 1]``; the window is step 2, the adjustment
    step 0 (window 2–3, buffer 1, adjustment 1 step); X = 2 of Y = 3.

    ====  ===  ====  =========  ==================================================
    day   a    w     kind       baseline (window step)
    ====  ===  ====  =========  ==================================================
    0     2    4     weekday    NaN (no earlier day)
    1     2    2     weekday    NaN (one earlier day < X)
    2     2    9     weekend    days 1, 0: w (2+4)/2 = 3; a 2/2 → ×1 → 3
    3     2.2  10    event      days 1, 0 → 3; a 2.2/2 = 1.1 (inside ±20 %) → 3.3
    4     1    6     weekday    days 1, 0 (not 2: weekend; not 3: event) → 3; a 1/2 → 0.5
                                capped at 0.8 → 2.4
    5     3    3     weekday    last Y = days 4, 1, 0, the X = 2 most recent 4, 1: w (6+2)/2
                                = 4; a 3 / ((1+2)/2) = 2 capped at 1.2 → 4.8
    ====  ===  ====  =========  ==================================================

    High 2 of 3 on day 5 takes the days of most window energy among 4, 1, 0 (6, 2, 4): days 4
    and 0 → (6+4)/2 = 5, unadjusted. A day never enters its own baseline nor do event days.
    """
    a = [2.0, 2.0, 2.0, 2.2, 1.0, 3.0]
    w = [4.0, 2.0, 9.0, 10.0, 6.0, 3.0]
    load = np.array([[v for d in range(6) for v in (a[d], 1.0, w[d], 1.0)]])
    eligible = np.array([True, True, False, True, True, True])
    event = np.array([False, False, False, True, False, False])
    window = EventWindow(start=2, stop=3, adjustment_steps=1, buffer_steps=1, cap=0.2)
    plain = average_x_of_y(load, 4, eligible, event, window, x=2, y=3)
    np.testing.assert_allclose(plain[0, :, 2], [np.nan, np.nan, 3.0, 3.3, 2.4, 4.8], atol=1e-12)
    np.testing.assert_allclose(plain[0, 5], [1.8, 1.2, 4.8, 1.2], atol=1e-12)  # ×1.2 all day
    high = average_x_of_y(load, 4, eligible, event, window, x=2, y=3, highest=True,
                          adjust=False)
    np.testing.assert_allclose(high[0, 2:, 2], [3.0, 3.0, 3.0, 5.0], atol=1e-12)
    last = average_x_of_y(load, 4, eligible, event, window, x=1, y=1, adjust=False)
    np.testing.assert_allclose(last[0, 1:, 2], [4.0, 2.0, 2.0, 2.0, 6.0], atol=1e-12)
