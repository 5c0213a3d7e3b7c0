"""Per-customer baseline accuracy and the same-day adjustment on any baseline."""

from __future__ import annotations

import numpy as np
import pytest

from sim.baseline import EventWindow, adjust_same_day, customer_accuracy

SPD = 24
WINDOW = EventWindow(start=17, stop=19, adjustment_steps=3, buffer_steps=1, cap=0.2)


def _load(days: int = 6) -> np.ndarray:
    hour = np.arange(SPD)
    day = 1.0 + 0.5 * np.exp(-((hour - 18) ** 2) / 8.0)
    return np.stack([np.tile(day, days), 2.0 * np.tile(day, days)])  # two customers [kW]


def test_accuracy_of_a_biased_baseline():
    load = _load()
    baseline = 1.1 * load.reshape(2, -1, SPD)
    days = np.array([True, True, True, True, True, False])
    got = customer_accuracy(load, baseline, SPD, days, WINDOW)
    np.testing.assert_allclose(got["bias_pct"], [10.0, 10.0])
    np.testing.assert_allclose(got["rrmse_pct"], [10.0, 10.0])
    assert list(got["days"]) == [5, 5]
    none = customer_accuracy(load, baseline, SPD, np.zeros(6, bool), WINDOW)
    assert np.isnan(none["rrmse_pct"]).all() and list(none["days"]) == [0, 0]


@pytest.mark.parametrize(("level", "applied"), [(1.1, 1.1), (1.5, 1.2), (0.5, 0.8)])
def test_same_day_adjustment_is_capped(level, applied):
    load = _load()
    baseline = load.reshape(2, -1, SPD) / level  # the day runs `level` times its baseline
    adjusted = adjust_same_day(load, baseline, SPD, WINDOW)
    np.testing.assert_allclose(adjusted, baseline * applied)
