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
    daily_degree_days,
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
    with pytest.raises(ValueError, match="^load must cover whole days$"):
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


def test_x_of_y_defaults_masks_as_integers_and_adjustment_edges_by_hand():
    """Defaults are CAISO's 10 in 10: with 11 weekdays of load 1, 2, …, 11 at the window, day
    10's baseline is the mean of days 0–9 = 5.5, days before have too little history (NaN).

    Masks given as 0/1 integers mean the same as booleans. A window at the start of the day
    leaves no adjustment slots: no adjustment. A reference day with no load in the adjustment
    slots gives ratio 1 (no division by zero); an expected 0.5 kW against an actual 0.55 kW
    scales by 1.1 (a ratio below 1 kW of expectation is still applied).
    """
    w = np.arange(1.0, 12.0)
    load = np.array([[v for d in range(11) for v in (1.0, w[d])]])
    window = EventWindow(start=1, stop=2, adjustment_steps=1, buffer_steps=0)
    base = average_x_of_y(load, 2, np.ones(11, bool), np.zeros(11, bool), window, adjust=False)
    np.testing.assert_allclose(base[0, :, 1], [np.nan] * 10 + [5.5])
    ints = average_x_of_y(load, 2, np.ones(11, int), np.zeros(11, int), window, adjust=False)
    np.testing.assert_array_equal(ints, base)

    # Window from step 0: nothing before it to adjust on, the plain mean stays.
    at_start = EventWindow(start=0, stop=1, adjustment_steps=1, buffer_steps=0)
    two = np.array([[2.0, 0.0, 4.0, 0.0, 9.0, 0.0]])               # days' step 0: 2, 4, 9
    got = average_x_of_y(two, 2, np.ones(3, bool), np.zeros(3, bool), at_start, x=2, y=2)
    np.testing.assert_allclose(got[0, 2], [3.0, 0.0])

    # Adjustment slot (step 0) empty on the reference days → ratio 1; 0.5 → 0.55 → ×1.1.
    load = np.array([[0.0, 2.0, 0.0, 4.0, 7.0, 1.0],
                     [0.5, 2.0, 0.5, 4.0, 0.55, 1.0]])
    got = average_x_of_y(load, 2, np.ones(3, bool), np.zeros(3, bool), window, x=2, y=2)
    np.testing.assert_allclose(got[:, 2, 1], [3.0, 3.3], rtol=1e-12)


def test_high_x_of_y_ranks_on_the_window_only_and_keeps_ties_in_recency_order():
    """High 1 of 2 over steps ``[big, w, late]`` with the window on step 1: day 0 (w = 5,
    big 0, late 0) beats day 1 (w = 3, big 100, late 100), so day 2's baseline window is 5 —
    ranking on the whole day or on the window and the rest of the day would pick day 1. With
    equal window energy the most recent day (1) wins (stable order)."""
    window = EventWindow(start=1, stop=2, adjustment_steps=1, buffer_steps=0)
    load = np.array([[0.0, 5.0, 0.0, 100.0, 3.0, 100.0, 0.0, 0.0, 0.0]])
    got = average_x_of_y(load, 3, np.ones(3, bool), np.zeros(3, bool), window, x=1, y=2,
                         highest=True, adjust=False)
    np.testing.assert_allclose(got[0, 2], [0.0, 5.0, 0.0])
    tie = np.array([[0.0, 5.0, 0.0, 100.0, 5.0, 0.0, 0.0, 0.0, 0.0]])
    got = average_x_of_y(tie, 3, np.ones(3, bool), np.zeros(3, bool), window, x=1, y=2,
                         highest=True, adjust=False)
    np.testing.assert_allclose(got[0, 2], [100.0, 5.0, 0.0])


def test_high_x_of_y_looks_back_only_y_days():
    """highest=True with the default X = Y = 10 over 12 days whose window loads are 100, 1, 2,
    …, 10, 0: day 11 averages days 1–10 (5.5); looking back 11 days would rank day 0's 100 in."""
    w = np.array([100.0, *range(1, 11), 0.0])
    load = np.array([[v for d in range(12) for v in (1.0, w[d])]])
    window = EventWindow(start=1, stop=2, adjustment_steps=1, buffer_steps=0)
    got = average_x_of_y(load, 2, np.ones(12, bool), np.zeros(12, bool), window, highest=True,
                         adjust=False)
    assert got[0, 11, 1] == pytest.approx(5.5)


def test_accuracy_metrics_and_reduction_by_hand():
    """Two customers, two days of two steps, the window the whole day.

    actual  c0: (1, 2) (3, 4)   c1: (1, 1) (1, 1)      Σ actual = 14
    base    c0: (2, 2) (3, 3)   c1: (1, 1) (0, 3)
    base − actual: c0 (1, 0) (0, −1), c1 (0, 0) (−1, 2): Σ = 1, Σ|·| = 5
    bias 1/14 = 7.142857 %, WAPE 5/14 = 35.714286 %; feeder totals actual (2, 3) (4, 5),
    base (3, 3) (3, 6): errors 1, 0, −1, 1 → RMSE √¾ over mean 3.5 → 24.743583 %.
    Estimated reduction per event day: Σ_customers (base − actual), mean over the window:
    day 0 (1 + 0)/2 = 0.5, day 1 (−1 + 1)/2 = 0.
    """
    actual = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    base = np.array([[[2.0, 2.0], [3.0, 3.0]], [[1.0, 1.0], [0.0, 3.0]]])
    whole = EventWindow(start=0, stop=2)
    got = baseline_accuracy(actual, base, 2, np.array([1, 1]), whole)
    assert got == pytest.approx({"bias_pct": 100 / 14, "wape_pct": 500 / 14,
                                 "cv_rmse_pct": np.sqrt(0.75) / 3.5 * 100, "days": 2},
                                rel=1e-12)
    one = baseline_accuracy(actual, base, 2, np.array([True, False]), whole)
    assert one["days"] == 1 and one["bias_pct"] == pytest.approx(100 / 5)
    none = baseline_accuracy(actual, np.full_like(base, np.nan), 2, np.ones(2, bool), whole)
    assert none["days"] == 0 and set(none) == {"bias_pct", "wape_pct", "cv_rmse_pct", "days"}
    assert np.isnan([none["bias_pct"], none["wape_pct"], none["cv_rmse_pct"]]).all()
    np.testing.assert_allclose(
        estimated_reduction_kw(actual, base, 2, np.array([1, 1]), whole), [0.5, 0.0])


def test_degree_days_by_hand():
    """Daily means 11, 25, 15.5 °C against 15.5 °C (heating) and 22 °C (cooling):
    HDD 4.5, 0, 0 and CDD 0, 3, 0 [K·d]."""
    hdd, cdd = daily_degree_days(np.array([10.0, 12.0, 24.0, 26.0, 15.5, 15.5]), 2)
    np.testing.assert_allclose(hdd, [4.5, 0.0, 0.0])
    np.testing.assert_allclose(cdd, [0.0, 3.0, 0.0])


def test_weather_regression_leaves_the_day_and_event_days_out_by_hand():
    """Load on a line in the degree-days, ``(1 + s) + 0.2·HDD + 0.5·CDD`` at step s, except
    day 0 (not eligible, +10), day 6 (event, −3) and day 7 (+5, scored out of sample).

    Day means 5, 10, 0, 25, 28, 15, 8, 20 °C: HDD 10.5, 5.5, 15.5, 0, 0, 0.5, 7.5, 0; CDD 0, 0,
    0, 3, 6, 0, 0, 0. Day 7's baseline is fitted on days 1–5 only, all on the line, so it is the
    line itself, (1, 2). Three coefficients need 3 + 2 = 5 training days: with days 1–4 and 7
    eligible, days 1–4 and 7 have 4 (NaN) and days 0, 5, 6 have 5 (fitted).
    """
    means = np.array([5.0, 10.0, 0.0, 25.0, 28.0, 15.0, 8.0, 20.0])
    hdd = np.maximum(15.5 - means, 0.0)
    cdd = np.maximum(means - 22.0, 0.0)
    line = (np.array([1.0, 2.0])[None, :] + (0.2 * hdd + 0.5 * cdd)[:, None])   # [day, step]
    line[0] += 10.0
    line[6] -= 3.0
    line[7] += 5.0
    load = line.reshape(1, 16)
    temperature = np.repeat(means, 2)
    eligible = np.array([0, 1, 1, 1, 1, 1, 1, 1])
    event = np.array([0, 0, 0, 0, 0, 0, 1, 0])
    got = weather_regression(load, 2, temperature, eligible, event)
    np.testing.assert_allclose(got[0, 7], [1.0, 2.0], atol=1e-9)
    few = np.array([0, 1, 1, 1, 1, 0, 0, 1], dtype=bool)
    got = weather_regression(load, 2, temperature, few, event.astype(bool))
    assert np.isnan(got[0, [1, 2, 3, 4, 7]]).all() and np.isfinite(got[0, [0, 5, 6]]).all()
