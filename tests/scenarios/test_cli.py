"""CLI commands beyond `run`: listing, checking, meter data, with their exit codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scenarios.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    done = runner.invoke(app, ["--help"])
    assert done.exit_code == 0
    for command in ("run", "simulate", "check", "scenarios", "customers", "pareto", "batch",
                    "calibrate", "data"):
        assert command in done.output


def test_scenarios_lists_bundled():
    done = runner.invoke(app, ["scenarios"])
    assert done.exit_code == 0
    assert "cigre_lv_winter" in done.output and "simbench:1-MV-rural--0-sw" in done.output


def test_check_prints_resolved_scenario():
    done = runner.invoke(app, ["check", "simbench_lv_rural_ev_hp"])
    assert done.exit_code == 0
    assert '"trafo_loading_max_pct": 140.0' in done.output
    assert '"draws": 20' in done.output


def test_check_unknown_file_exits_1(tmp_path):
    done = runner.invoke(app, ["check", str(tmp_path / "nope.toml")])
    assert done.exit_code == 1
    assert "no such scenario file" in done.output


@pytest.fixture(scope="module")
def meter_file(tmp_path_factory):
    """Four weeks of 15-min readings for three customers, with faults injected."""
    rng = np.random.default_rng(3)
    time = pd.date_range("2016-02-01", periods=28 * 96, freq="15min")
    hour = time.hour + time.minute / 60
    rows = []
    for cid in range(3):
        kw = 0.3 + 0.5 * np.exp(-((hour - 19) ** 2) / 4) + 0.2 * np.exp(-((hour - 8) ** 2) / 2)
        kwh = kw * (1 + 0.2 * cid) * 0.25 * rng.lognormal(0, 0.1, len(time))
        rows.append(pd.DataFrame({"customer_id": cid, "timestamp": time.strftime("%Y-%m-%d %H:%M"),
                                  "kwh": kwh.round(4)}))
    frame = pd.concat(rows, ignore_index=True)
    frame.loc[100, "kwh"] = -1.0                                # negative reading
    frame = pd.concat([frame, frame.iloc[[200]]])               # duplicate row
    frame = frame.drop(index=range(300, 302))                   # short gap
    path = tmp_path_factory.mktemp("meter") / "meter.csv"
    frame.to_csv(path, index=False)
    return path


def test_data_check_reports_faults(meter_file, tmp_path):
    report = tmp_path / "report.csv"
    done = runner.invoke(app, ["data", "check", str(meter_file), "-o", str(report)])
    assert done.exit_code == 0, done.output
    assert "3 customers" in done.output
    assert "negative 1" in done.output and "duplicates 1" in done.output
    table = pd.read_csv(report)
    assert set(table["customer_id"]) == {0, 1, 2}


def test_calibrate_writes_customers_file(meter_file, tmp_path):
    from customers.io import read_customers_csv
    from sim.network import load_network

    out = tmp_path / "customers.csv"
    done = runner.invoke(app, ["calibrate", str(meter_file), "-o", str(out), "--bus", "1"])
    assert done.exit_code == 0, done.output
    fitted = pd.read_csv(out)
    assert len(fitted) == 3
    # four weeks of the synthetic shape scaled to a year, customer 2 is 1.4× customer 0
    assert fitted["annual_kwh"].iloc[2] / fitted["annual_kwh"].iloc[0] == pytest.approx(1.4, rel=0.05)
    population = read_customers_csv(out, load_network("pandapower:cigre_lv"))
    assert population.sizes["customer"] == 3


def test_calibrate_needs_a_bus(meter_file, tmp_path):
    done = runner.invoke(app, ["calibrate", str(meter_file), "-o", str(tmp_path / "c.csv")])
    assert done.exit_code == 1
    assert "--bus" in done.output
