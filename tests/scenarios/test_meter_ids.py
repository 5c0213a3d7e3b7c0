"""Text meter IDs from the meter file through calibrate, customers and simulate to every output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from scenarios.cli import app

runner = CliRunner()
IDS = ("MTR-000123", "0012", "C1")


@pytest.fixture(scope="module")
def meter_file(tmp_path_factory):
    rng = np.random.default_rng(5)
    time = pd.date_range("2016-01-04", periods=21 * 96, freq="15min")
    hour = time.hour + time.minute / 60
    parts = []
    for i, cid in enumerate(IDS):
        kw = (0.3 + 0.6 * np.exp(-((hour - 19) ** 2) / 4)) * (1 + 0.3 * i)
        kwh = kw * 0.25 * rng.lognormal(0, 0.1, len(time))
        parts.append(pd.DataFrame({"customer_id": cid, "timestamp": time.strftime("%Y-%m-%d %H:%M"),
                                   "kwh": kwh.round(5)}))
    path = tmp_path_factory.mktemp("ids") / "meter.csv"
    pd.concat(parts).to_csv(path, index=False)
    return path


def test_data_check_with_text_ids_and_options(meter_file, tmp_path):
    report = tmp_path / "report.csv"
    done = runner.invoke(app, ["data", "check", str(meter_file), "-o", str(report), "--step-min",
                               "15", "--tz", "Europe/Berlin", "--max-kw", "100", "--stuck-steps", "8"])
    assert done.exit_code == 0, done.output
    assert "3 customers" in done.output and "15 min 3 meter(s)" in done.output
    written = pd.read_csv(report, dtype={"customer_id": str})
    assert sorted(written["customer_id"]) == sorted(IDS)
    assert (written["status"] == "ok").all()


def test_unknown_time_zone_is_exit_1(meter_file):
    done = runner.invoke(app, ["data", "check", str(meter_file), "--tz", "Mars/Olympus"])
    assert done.exit_code == 1 and "--tz" in done.output


def test_meter_switching_interval_is_exit_1_naming_it(tmp_path):
    quarter = pd.DataFrame({"customer_id": "X-9", "kwh": 0.1, "timestamp":
                            pd.date_range("2016-01-04", periods=96, freq="15min").astype(str)})
    hourly = pd.DataFrame({"customer_id": "X-9", "kwh": 0.4, "timestamp":
                           pd.date_range("2016-01-05", periods=24, freq="60min").astype(str)})
    path = tmp_path / "mixed.csv"
    pd.concat([quarter, hourly]).to_csv(path, index=False)
    done = runner.invoke(app, ["data", "check", str(path)])
    assert done.exit_code == 1 and "X-9 (15 and 60 min)" in done.output
    assert len(done.output.strip().splitlines()) == 1


def test_text_ids_round_trip_to_result_and_csvs(meter_file, make_scenario, tmp_path):
    buses = tmp_path / "buses.csv"
    pd.DataFrame({"customer_id": IDS, "bus": [14, 15, 16]}).to_csv(buses, index=False)
    customers = tmp_path / "customers.csv"
    done = runner.invoke(app, ["calibrate", str(meter_file), "-o", str(customers),
                               "--buses", str(buses)])
    assert done.exit_code == 0, done.output
    scenario = make_scenario({"customers": {"source": "file", "file": str(customers)}})
    out = tmp_path / "customers-out"
    done = runner.invoke(app, ["customers", str(scenario), "-o", str(out)])
    assert done.exit_code == 0, done.output
    written = pd.read_csv(out / "customers.csv", dtype={"customer_id": str})
    assert list(written["customer_id"]) == sorted(IDS)
    with xr.open_dataset(out / "customers.nc", engine="h5netcdf") as ds:
        assert list(ds["customer_id"].values) == sorted(IDS)
    run_out = tmp_path / "run"
    done = runner.invoke(app, ["simulate", str(scenario), "-o", str(run_out)])
    assert done.exit_code == 0, done.output
    with xr.open_dataset(run_out / "result.nc", engine="h5netcdf") as ds:
        assert list(ds["customer_id"].values) == sorted(IDS)
        assert list(ds["customer_bus"].values) == [15, 16, 14]  # "0012", "C1", "MTR-000123"
