"""Meter-driven customers: measured series are the loads, synthetic customers fill the rest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from scenarios.cli import app

runner = CliRunner()
# Meter ID, bus (cigre_lv load elements R11, R15, R16 and a second meter on R16), interval.
METERS = (("MTR-000123", 12, 15), ("0012", 16, 60), ("C7", 17, 15), ("C8", 17, 30))


def _meter_frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    parts = []
    for i, (cid, _, minutes) in enumerate(METERS):
        time = pd.date_range("2016-01-08", "2016-01-16", freq=f"{minutes}min", inclusive="left")
        hour = time.hour + time.minute / 60
        kw = (1.0 + 2.0 * np.exp(-((hour - 18) ** 2) / 6)) * (1 + i) * rng.lognormal(0, 0.15, len(time))
        parts.append(pd.DataFrame({"customer_id": cid, "timestamp": time.strftime("%Y-%m-%d %H:%M"),
                                   "kwh": np.round(kw * minutes / 60, 5)}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def meter_case(make_scenario, tmp_path_factory):
    folder = tmp_path_factory.mktemp("meter-run")
    frame = _meter_frame()
    frame.to_csv(folder / "meter.csv", index=False)
    pd.DataFrame({"customer_id": [m[0] for m in METERS], "bus": [m[1] for m in METERS],
                  "segment": "residential"}).to_csv(folder / "register.csv", index=False)
    scenario = make_scenario({
        "time": {"start": "2016-01-12", "days": 2, "step_min": 60},
        "customers": {"source": "meter", "meter_file": str(folder / "meter.csv"),
                      "register_file": str(folder / "register.csv"), "count": 20},
    })
    out = folder / "out"
    done = runner.invoke(app, ["simulate", str(scenario), "-o", str(out)])
    assert done.exit_code == 0, done.output
    return frame, out, done.output, scenario


def test_each_measured_customer_energy_is_reproduced(meter_case):
    frame, out, _, _ = meter_case
    stamps = pd.to_datetime(frame["timestamp"])
    window = (stamps >= "2016-01-12") & (stamps < "2016-01-14")
    truth = frame[window].groupby("customer_id")["kwh"].sum()
    with xr.open_dataset(out / "result.nc", engine="h5netcdf") as ds:
        ids = ds["customer_id"].values
        energy = ds["p_kw"].sum("time").values * ds.attrs["step_h"]
        measured = ds["measured"].values.astype(bool)
        for cid, _, _ in METERS:
            i = int(np.flatnonzero(ids == cid)[0])
            assert measured[i]
            assert energy[i] == pytest.approx(truth[cid], rel=1e-3), cid
        assert measured.sum() == len(METERS)


def test_unmeasured_elements_are_filled_and_reported(meter_case):
    _, out, output, _ = meter_case
    with xr.open_dataset(out / "result.nc", engine="h5netcdf") as ds:
        measured = ds["measured"].values.astype(bool)
        loads = ds["customer_load"].values
        assert set(loads[measured]) == {1, 2, 3}
        # Every other element with a rating gets synthetic customers (20 customers, 12 elements).
        assert set(loads[~measured]) == set(range(15)) - {1, 2, 3}
        assert ds.attrs["customers_measured"] == 4 and ds.attrs["customers_synthetic"] == 20
        energy = ds["p_kw"].sum("time").values * ds.attrs["step_h"]
        measured_kwh = energy[measured].sum()
        assert ds.attrs["energy_measured_kwh"] == pytest.approx(measured_kwh, rel=1e-9)
        # Each filled element carries energy in proportion to its rating, at the measured rate.
        rated = {1: 0.01425, 2: 0.0494, 3: 0.05225, 0: 0.19, 7: 0.108}
        per_mw = measured_kwh / (rated[1] + rated[2] + rated[3])
        for element in (0, 7):
            got = energy[~measured & (loads == element)].sum()
            assert got == pytest.approx(per_mw * rated[element], rel=1e-6)
    assert "4 measured" in output and "20 synthetic" in output
    assert "moved onto 60-min steps" in output


BAD_INPUTS = {
    "unknown bus": (lambda meter, register: (meter, register.assign(bus=[12, 16, 999, 17])),
                    "register.csv, line 4, column 'bus'"),
    "meter missing from data": (lambda meter, register: (meter[meter.customer_id != "C7"], register),
                                "register.csv, line 4, column 'customer_id': meter 'C7'"),
    "window outside data": (lambda meter, register: (
        meter[pd.to_datetime(meter.timestamp) >= "2016-01-13"], register),
        "meter.csv: meter 'MTR-000123' has readings from 2016-01-13"),
    "meter switching interval": (lambda meter, register: (pd.concat([
        meter[meter.customer_id != "0012"],
        meter[(meter.customer_id == "0012") & (pd.to_datetime(meter.timestamp) < "2016-01-11")],
        _quarter("0012")]), register), "meter.csv: meter data: 1 meter(s) switch interval length"),
}


def _quarter(cid: str) -> pd.DataFrame:
    time = pd.date_range("2016-01-11", "2016-01-16", freq="15min", inclusive="left")
    return pd.DataFrame({"customer_id": cid, "timestamp": time.strftime("%Y-%m-%d %H:%M"),
                         "kwh": 0.2})


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_meter_input_is_exit_1_naming_file_row_field(case, make_scenario, tmp_path):
    change, expected = BAD_INPUTS[case]
    register = pd.DataFrame({"customer_id": [m[0] for m in METERS], "bus": [m[1] for m in METERS],
                             "segment": "residential"})
    meter, register = change(_meter_frame(), register)
    meter.to_csv(tmp_path / "meter.csv", index=False)
    register.to_csv(tmp_path / "register.csv", index=False)
    scenario = make_scenario({
        "time": {"start": "2016-01-12", "days": 1, "step_min": 60},
        "customers": {"source": "meter", "meter_file": str(tmp_path / "meter.csv"),
                      "register_file": str(tmp_path / "register.csv")},
    })
    out = tmp_path / "out"
    done = runner.invoke(app, ["simulate", str(scenario), "-o", str(out)])
    assert done.exit_code == 1, done.output
    assert expected in done.output
    assert len(done.output.strip().splitlines()) == 1
    assert not out.exists()


def test_register_by_load_element_and_long_gaps_filled(make_scenario, tmp_path):
    """A register naming load elements; a day missing from one meter is filled by its mean at
    that time of day and said so (no power flow needed: the population stage alone)."""
    from scenarios.feeder import simulation_time
    from scenarios.load import load_scenario
    from scenarios.meter_loads import read_measured
    from sim.network import load_network

    meter = _meter_frame()
    stamps = pd.to_datetime(meter["timestamp"])
    gap = (meter["customer_id"] == "C7") & (stamps >= "2016-01-12") & (stamps < "2016-01-13")
    meter[~gap].to_csv(tmp_path / "meter.csv", index=False)
    pd.DataFrame({"customer_id": [m[0] for m in METERS], "load": [1, 2, 3, 3],
                  "segment": "commercial"}).to_csv(tmp_path / "register.csv", index=False)
    scenario = load_scenario(make_scenario({
        "time": {"start": "2016-01-12", "days": 2, "step_min": 30},
        "customers": {"source": "meter", "meter_file": str(tmp_path / "meter.csv"),
                      "register_file": str(tmp_path / "register.csv"), "count": 10},
    }))
    net = load_network(scenario.network.source, base_dir=scenario.base_dir)
    time = simulation_time(scenario.time)
    measured = read_measured(scenario, net, time)
    population = measured.population
    assert list(population["bus"].values[:4]) == [12, 16, 17, 17]
    assert list(population["customer_id"].values[:4]) == [m[0] for m in METERS]
    assert "96 steps of 1 meter(s) inside long gaps filled" in " ".join(measured.notes)
    # The filled day is the meter's typical day, close to what it really drew (noise 15 %).
    c7 = (meter["customer_id"] == "C7") & (stamps >= "2016-01-12") & (stamps < "2016-01-14")
    assert measured.energy_kwh[2].sum() == pytest.approx(meter.loc[c7, "kwh"].sum(), rel=0.1)
    for i in (0, 1, 3):
        cid = METERS[i][0]
        inside = (meter["customer_id"] == cid) & (stamps >= "2016-01-12") & (stamps < "2016-01-14")
        assert measured.energy_kwh[i].sum() == pytest.approx(meter.loc[inside, "kwh"].sum(), rel=1e-9)


def test_spring_clock_change_is_filled_and_said(make_scenario, tmp_path):
    """A local wall-clock meter has no 02:xx readings on 27 March 2016; the simulated naive
    local day has them: four interpolated readings, said in the notes."""
    from scenarios.feeder import simulation_time
    from scenarios.load import load_scenario
    from scenarios.meter_loads import read_measured
    from sim.network import load_network

    time = pd.date_range("2016-03-24", "2016-03-30", freq="15min", inclusive="left")
    kwh = (0.2 + 0.1 * np.sin(np.arange(len(time)) / 7.0)).round(6)
    meter = pd.DataFrame({"customer_id": "S-1", "timestamp": time.strftime("%Y-%m-%d %H:%M"),
                          "kwh": kwh.round(6)})
    skipped = meter["timestamp"].str.startswith("2016-03-27 02:")
    meter[~skipped].to_csv(tmp_path / "meter.csv", index=False)
    pd.DataFrame({"customer_id": ["S-1"], "bus": [12], "segment": ["residential"]}).to_csv(
        tmp_path / "register.csv", index=False)
    scenario = load_scenario(make_scenario({
        "time": {"start": "2016-03-26", "days": 2, "step_min": 15},
        "customers": {"source": "meter", "meter_file": str(tmp_path / "meter.csv"),
                      "register_file": str(tmp_path / "register.csv"), "count": 5},
    }))
    net = load_network(scenario.network.source, base_dir=scenario.base_dir)
    measured = read_measured(scenario, net, simulation_time(scenario.time))
    assert "4 readings of the skipped spring hour interpolated" in " ".join(measured.notes)
    window = (time >= "2016-03-26") & (time < "2016-03-28")
    # Exactly the meter's own readings plus the hour interpolated from 01:45 to 03:00.
    hole = np.flatnonzero(skipped.to_numpy())
    filled = np.interp(hole, [hole[0] - 1, hole[-1] + 1], kwh[[hole[0] - 1, hole[-1] + 1]])
    own = kwh[window & ~skipped.to_numpy()].sum()
    assert measured.energy_kwh[0].sum() == pytest.approx(own + filled.sum(), rel=1e-9)
