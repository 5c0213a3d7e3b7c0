"""Season-long event calls (`scenarios.dispatch`), worked by hand on a 10-day toy season."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from scenarios.dispatch import call_days, dispatch_events, event_steps, hit_rate
from scenarios.errors import InputError
from scenarios.schema import CurtailmentContract, DispatchConfig

HISTORY = np.array([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], float)
FORECAST = np.array([55, 95, 40, 101, 30, 99, 20, 10, 98, 5], float)
DAYS = pd.date_range("2016-07-01", periods=10, freq="D")


def _toy(actual=FORECAST, forecast=FORECAST):
    return SimpleNamespace(day=DAYS, p10_kw=forecast - 5, p50_kw=forecast, p90_kw=forecast + 5,
                           actual_kw=actual)


def test_paced_calls_on_a_ten_day_toy_season():
    """Two events over a 10-day season, forecasts issued before it 10, 20, …, 100 kW.

    The threshold on day d is the ⌈(1 − k/n)·m⌉-th smallest of the m forecasts issued before
    d (k events left, n = 10 − d days left):

    - d0: k=2, n=10, level 0.8, m=10 → 8th smallest of the history = 80; 55 < 80: no call.
    - d1: seen + 55 (m=11), level 1 − 2/9 = 0.778, ⌈8.56⌉ = 9th smallest = 80; 95 ≥ 80: call.
    - d2: seen + 95 (m=12), k=1, n=8, level 0.875, ⌈10.5⌉ = 11th smallest = 95; 40: no.
    - d3: seen + 40 (m=13), n=7, level 0.857, ⌈11.14⌉ = 12th smallest = 95; 101 ≥ 95: call.
    - no events left: days 4-9 are not called.

    Calls on days 1 and 3; the two highest days are 3 (101) and 5 (99): hit rate 1/2. A rule
    that calls the design days (the two highest days, 3 and 5) would fail this test.
    """
    called, threshold = call_days(FORECAST, 2, season_days=10, history_kw=HISTORY)
    assert np.flatnonzero(called).tolist() == [1, 3]
    np.testing.assert_array_equal(threshold[:4], [80, 80, 95, 95])
    assert np.isinf(threshold[4:]).all()
    contract = CurtailmentContract(name="c", kw=1.0, max_events=2, event_h=1.0)
    plan = dispatch_events(_toy(), [contract], DispatchConfig(season_days=10),
                           history_kw=HISTORY)
    assert np.flatnonzero(plan.called[0]).tolist() == [1, 3]
    assert hit_rate(plan, 2) == pytest.approx(0.5)


def test_calls_use_the_forecast_not_the_actual_peak():
    """Day 5's actual peak (150 kW) is the season's highest, but its forecast is 20 kW. On day
    5 at most 3 events are left of n = 5 days, so the level is at least 1 − 3/5 = 0.4; the
    forecasts issued by then (history 10…100 kW and days 0–4) have a 40 % quantile above
    20 kW: day 5 is not called."""
    forecast = FORECAST.copy()
    forecast[5] = 20.0
    actual = FORECAST.copy()
    actual[5] = 150.0
    called, _ = call_days(forecast, 3, season_days=10, history_kw=HISTORY)
    assert not called[5]
    plan = dispatch_events(_toy(actual=actual, forecast=forecast),
                           [CurtailmentContract(name="c", kw=1.0, max_events=3)],
                           DispatchConfig(season_days=10), history_kw=HISTORY)
    assert not plan.called[0, 5]


def test_no_future_data():
    """Changing the forecasts and actual peaks of days after d leaves the calls up to d alone."""
    rng = np.random.default_rng(3)
    forecast = rng.uniform(50, 100, 30)
    actual = forecast + rng.normal(0, 5, 30)
    contract = CurtailmentContract(name="c", kw=1.0, max_events=6)
    config = DispatchConfig(season_days=30)
    days = pd.date_range("2016-07-01", periods=30, freq="D")

    def _toy(actual, forecast):
        return SimpleNamespace(day=days, p10_kw=forecast - 5, p50_kw=forecast,
                               p90_kw=forecast + 5, actual_kw=actual)

    plan = dispatch_events(_toy(actual, forecast), [contract], config, history_kw=HISTORY)
    base, _ = call_days(forecast, 6, season_days=30, history_kw=HISTORY)
    for d in (0, 7, 15, 28):
        f2, a2 = forecast.copy(), actual.copy()
        f2[d + 1:] = rng.uniform(0, 200, 29 - d)
        a2[d + 1:] = rng.uniform(0, 200, 29 - d)
        changed, _ = call_days(f2, 6, season_days=30, history_kw=HISTORY)
        np.testing.assert_array_equal(changed[:d + 1], base[:d + 1])
        later = dispatch_events(_toy(actual=a2, forecast=f2), [contract], config,
                                history_kw=HISTORY)
        np.testing.assert_array_equal(later.called[0, :d + 1], plan.called[0, :d + 1])
        np.testing.assert_array_equal(changed[:d + 1], base[:d + 1])


def test_events_are_used_up_when_days_run_out():
    """Without history, with as many events left as days left, every day is called."""
    called, threshold = call_days(np.full(3, 10.0), 3, season_days=3)
    assert called.all()
    assert np.isnan(threshold[0])


def test_max_events_is_never_exceeded():
    called, _ = call_days(np.full(50, 100.0), 4, season_days=50, history_kw=HISTORY)
    assert called.sum() == 4


def test_a_threshold_that_calls_no_event_names_the_field():
    contract = CurtailmentContract(name="c", kw=1.0, max_events=2)
    with pytest.raises(InputError, match="dispatch.threshold_kw"):
        dispatch_events(_toy(), [contract], DispatchConfig(threshold_kw=500.0))


def test_event_steps_sit_on_the_called_days_peak():
    time = pd.date_range("2016-07-01", periods=3 * 24, freq="h")
    load = np.tile(np.r_[np.zeros(17), 5.0, np.zeros(6)], 3)   # peak at 17:00 every day
    head = pd.Series(load, index=time)
    contract = CurtailmentContract(name="c", kw=1.0, max_events=2, event_h=3.0)
    plan = SimpleNamespace(day=pd.DatetimeIndex(time.normalize().unique()),
                           called=np.array([[False, True, False]]), peak_hour=None)
    steps = event_steps(plan, [contract], head, 1.0)
    assert [str(t)[:16] for t in time[steps[0]]] == [
        "2016-07-02 16:00", "2016-07-02 17:00", "2016-07-02 18:00"]
    # With a day-ahead forecast of the peak hour the event sits there, not on the actual peak.
    forecast_hour = SimpleNamespace(**{**vars(plan), "peak_hour": np.array([17.0, 14.0, 17.0])})
    steps = event_steps(forecast_hour, [contract], head, 1.0)
    assert [str(t)[:16] for t in time[steps[0]]] == [
        "2016-07-02 13:00", "2016-07-02 14:00", "2016-07-02 15:00"]
