"""`gridflex forecast`: files written, metrics reported, bad input → exit 1 naming the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from scenarios.cli import app

runner = CliRunner()
METER_DAYS = 240   # 225 days of history needed before a 7-day window, and a margin
ORIGIN = str((pd.Timestamp("2016-01-01") + pd.Timedelta(days=METER_DAYS - 7)).date())


def _meter_frame(days: int = METER_DAYS, customers: int = 4, seed: int = 1) -> pd.DataFrame:
    """Hourly readings [kWh] with an evening peak, weekly rhythm, seasonal drift and noise."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2016-01-01", periods=days * 24, freq="h")
    hour = time.hour.to_numpy()
    evening = np.exp(-0.5 * ((hour - 19) / 2.0) ** 2)
    weekend = (time.weekday.to_numpy() >= 5) * 0.2
    season = 0.3 * np.cos(2 * np.pi * time.dayofyear.to_numpy() / 365.25)
    frames = []
    for cid in range(1, customers + 1):
        kwh = 0.4 + season + weekend + 1.2 * evening * rng.uniform(0.7, 1.3, days).repeat(24)
        kwh = kwh + rng.gamma(2.0, 0.08, len(time))
        frames.append(pd.DataFrame({"customer_id": cid, "timestamp": time.strftime("%Y-%m-%d %H:%M"),
                                    "kwh": np.round(kwh, 4)}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def meter_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("meter") / "meters.csv"
    _meter_frame().to_csv(path, index=False)
    return path


def test_forecast_a_meter_file_writes_netcdf_plot_and_metrics(meter_csv, tmp_path):
    out = tmp_path / "out"
    done = runner.invoke(app, ["forecast", str(meter_csv), "--horizon", "1d", "-o", str(out),
                               "--origin", ORIGIN])
    assert done.exit_code == 0, done.output
    for name in ("forecast.nc", "forecast.png", "forecast_metrics.csv"):
        assert (out / name).is_file(), name
    with xr.open_dataset(out / "forecast.nc") as ds:
        assert ds.sizes["period"] == 1 and ds.sizes["time"] == 56
        assert int(ds["in_window"].sum()) == 7
        window = ds["in_window"].values.astype(bool)
        assert str(ds["time"].values[window][0])[:10] == ORIGIN
        assert np.isfinite(ds["p50_kw"].values).all()
    assert "vs naive" in done.output and "P10-P90" in done.output
    metrics = pd.read_csv(out / "forecast_metrics.csv")
    assert set(metrics["period"]) == {"window", "evaluation"}


def test_unknown_horizon_exits_1_naming_it(meter_csv, tmp_path):
    done = runner.invoke(app, ["forecast", str(meter_csv), "--horizon", "3w", "-o", str(tmp_path / "o")])
    assert done.exit_code == 1
    assert "--horizon" in done.stderr and "3w" in done.stderr
    assert not (tmp_path / "o").exists()


def test_history_shorter_than_needed_exits_1_naming_it(tiny_scenario, meter_csv, tmp_path):
    done = runner.invoke(app, ["forecast", str(tiny_scenario), "--history-days", "30",
                               "-o", str(tmp_path / "o")])
    assert done.exit_code == 1
    assert "--history-days" in done.stderr and "at least" in done.stderr
    early = runner.invoke(app, ["forecast", str(meter_csv), "--origin", "2016-03-01",
                                "-o", str(tmp_path / "o")])
    assert early.exit_code == 1
    assert "--origin" in early.stderr and "at least" in early.stderr
    assert not (tmp_path / "o").exists()


def test_meter_gap_across_the_origin_exits_1_naming_timestamp(tmp_path):
    frame = _meter_frame()
    stamps = pd.to_datetime(frame["timestamp"])
    origin = pd.Timestamp(ORIGIN)
    hole = (frame["customer_id"] == 2) & (stamps >= origin - pd.Timedelta(hours=5)) & (
        stamps < origin + pd.Timedelta(hours=5))
    path = tmp_path / "gappy.csv"
    frame[~hole].to_csv(path, index=False)
    done = runner.invoke(app, ["forecast", str(path), "--origin", ORIGIN, "-o", str(tmp_path / "o")])
    assert done.exit_code == 1
    assert "timestamp" in done.stderr and "origin" in done.stderr and str(path) in done.stderr
    assert not (tmp_path / "o").exists()
    # The same gap a week before the origin is no error: that day is left out.
    hole_before = (frame["customer_id"] == 2) & (stamps >= origin - pd.Timedelta(days=7, hours=5)) & (
        stamps < origin - pd.Timedelta(days=7) + pd.Timedelta(hours=5))
    frame[~hole_before].to_csv(path, index=False)
    ok = runner.invoke(app, ["forecast", str(path), "--origin", ORIGIN, "-o", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output
