"""TOU elasticities recovered from meter data before and after a tariff change."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from customers.response import price_segments, step_days, step_hours, step_prices, tou_response
from scenarios.cli import app
from scenarios.load import load_scenario
from scenarios.schema import ResponseConfig, WeatherConfig
from sim.weather import build_weather
from tests.scenarios.test_mv import _loads

runner = CliRunner()
TRUE = {"own_elasticity": -0.15, "cross_elasticity": 0.05}
TARIFFS = [
    {"name": "flat", "kind": "flat", "price_eur_per_kwh": 0.30},
    {"name": "tou", "kind": "tou", "periods": [
        {"name": "night", "start_h": 0, "end_h": 7, "price_eur_per_kwh": 0.20},
        {"name": "day", "start_h": 7, "end_h": 17, "price_eur_per_kwh": 0.30},
        {"name": "peak", "start_h": 17, "end_h": 21, "price_eur_per_kwh": 0.45},
        {"name": "late", "start_h": 21, "end_h": 24, "price_eur_per_kwh": 0.36},
    ]},
]


def test_tou_elasticities_are_recovered(make_scenario, tmp_path):
    """100 meters over 6 weeks; from 25 April half of them are on TOU and respond by the
    simulator's own model (`tou_response`) with known elasticities."""
    # The planner's cross elasticity: one tariff change identifies the own elasticity given it.
    scenario_path = make_scenario({"offers": {"tariffs": TARIFFS},
                                   "response": {"cross_elasticity": TRUE["cross_elasticity"]}})
    scenario = load_scenario(scenario_path)
    tariffs = {t.name: t for t in scenario.offers.tariffs}
    time = pd.date_range("2016-04-04", "2016-05-16", freq="15min", inclusive="left")
    temperature = build_weather(WeatherConfig(), time, seed=4, base_dir=Path("."))[
        "temperature_c"].values
    kw = _loads(time, temperature, 100, seed=31)
    after = np.asarray(time >= "2016-04-25")
    moved = (np.arange(100) // 2) % 2 == 0  # as many heated homes (even ids) in each group
    hours = step_hours(time.values[after])
    segment, r, share = price_segments(step_prices(hours, tariffs["flat"]),
                                       step_prices(hours, tariffs["tou"]), hours)
    config = ResponseConfig(**TRUE, conservation_effect=0.01)
    responded = tou_response(kw[moved][:, after], step_days(time.values[after]), segment, r, share,
                             config, np.ones(moved.sum()))
    kw[np.ix_(moved, after)] = responded
    ids = [f"T{i:03d}" for i in range(100)]
    pd.DataFrame({"customer_id": np.repeat(ids, len(time)),
                  "timestamp": np.tile(time.strftime("%Y-%m-%d %H:%M"), len(ids)),
                  "kwh": (kw * 0.25).ravel().round(6)}).to_csv(tmp_path / "meter.csv", index=False)
    pd.DataFrame({"customer_id": np.array(ids)[moved]}).to_csv(tmp_path / "moved.csv", index=False)
    out = tmp_path / "response_tou.toml"
    done = runner.invoke(app, ["tou-fit", str(tmp_path / "meter.csv"), str(tmp_path / "moved.csv"),
                               "--scenario", str(scenario_path), "--old", "flat", "--new", "tou",
                               "--switch", "2016-04-25", "-o", str(out)])
    assert done.exit_code == 0, done.output
    table = tomllib.loads(out.read_text())["response"]
    assert table["own_elasticity"] == pytest.approx(TRUE["own_elasticity"], abs=0.02)
    assert "cross_elasticity" not in table  # not separable from one change: kept, and said
    assert "cross_elasticity held at the scenario's 0.05" in out.read_text()
    ResponseConfig(**table)
    done = runner.invoke(app, ["tou-fit", str(tmp_path / "meter.csv"), str(tmp_path / "moved.csv"),
                               "--scenario", str(scenario_path), "--old", "flat", "--new", "nope",
                               "--switch", "2016-04-25", "-o", str(out)])
    assert done.exit_code == 1 and "--new: tariff 'nope'" in done.output
