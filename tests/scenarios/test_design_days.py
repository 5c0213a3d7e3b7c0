"""Design days: picked from the day-ahead forecast when the window allows, else simulated peaks."""

from __future__ import annotations

import pandas as pd
import pytest

from scenarios.feeder import build_design, build_feeder, feeder_head_kw
from scenarios.load import load_scenario
from scenarios.schema import DESIGN_FORECAST_MIN_DAYS
from sim.forecast import forecast_day_ahead, pick_design_days


def _design(make_scenario, time: dict):
    scenario = load_scenario(make_scenario({"time": time, "customers": {"count": 8}}))
    feeder = build_feeder(scenario)
    return scenario, feeder, build_design(scenario, feeder)


def test_design_days_are_the_forecast_peak_days(make_scenario):
    scenario, feeder, design = _design(
        make_scenario, {"days": DESIGN_FORECAST_MIN_DAYS + 7, "design_days": 3})
    assert design.attrs["design_days_from"] == "forecast"
    head = feeder_head_kw(feeder)
    temperature = pd.Series(feeder.weather["temperature_c"].values, index=head.index)
    forecast = forecast_day_ahead(head, temperature, country=scenario.time.country,
                                  seed=scenario.seed)
    assert design.attrs["design_days"] == [str(d.date()) for d in pick_design_days(forecast, 3)]
    assert design.attrs["forecast_mape_pct"] == pytest.approx(forecast.mape_pct)
    # Out-of-sample, so not a perfect fit, but a useful one on a winter feeder.
    assert 0.0 < design.attrs["forecast_mape_pct"] < 30.0


@pytest.mark.parametrize(("days_from", "label"), [
    ("forecast", "simulation (forecast needs"),
    ("simulation", "simulation"),
])
def test_short_window_or_simulation_choice_uses_the_simulated_peaks(make_scenario, days_from,
                                                                     label):
    _, feeder, design = _design(
        make_scenario, {"days": 3, "design_days": 2, "design_days_from": days_from})
    assert design.attrs["design_days_from"].startswith(label)
    head = feeder_head_kw(feeder)
    peaks = head.groupby(head.index.normalize()).max()
    assert design.attrs["design_days"] == sorted(str(d.date()) for d in peaks.nlargest(2).index)
    assert "forecast_mape_pct" not in design.attrs
