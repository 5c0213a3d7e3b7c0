"""Windows across the clock changes on SimBench grids with generators (issue 20, item 1).

SimBench profile tables run on the German wall clock of 2016: 27 March lacks 02:00–02:45 and
30 October repeats them. gridflex simulates on a naive local clock (24 h every day). A window
containing the spring change used to stop with "the SimBench profiles do not cover the
simulated window", and the class load shapes read the tables row by row, one hour early on
every summer day.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from scenarios.cli import app
from tests.scenarios.conftest import TINY_SCENARIO, merge, to_toml

GRID = "simbench:1-LV-semiurb4--0-sw"  # LV feeder with PV generators and their profiles


@pytest.fixture(scope="module")
def semiurb():
    from sim.network import load_network

    net = load_network(GRID)
    assert len(net.sgen) > 0 and "renewables" in net.profiles
    return net


def _factors(net, time: pd.DatetimeIndex) -> np.ndarray:
    from scenarios.feeder import _profile_factors

    return _profile_factors(net.profiles["renewables"], net.sgen["profile"], time)


def _raw(net, stamp: str, occurrence: int = 0) -> np.ndarray:
    """The table's row stamped ``stamp`` (dd.mm.yyyy HH:MM), its n-th occurrence."""
    table = net.profiles["renewables"]
    rows = np.flatnonzero(table["time"].to_numpy() == stamp)
    return table.iloc[rows[occurrence]][net.sgen["profile"].to_list()].to_numpy(np.float64)


def test_spring_skipped_hour_is_interpolated(semiurb):
    time = pd.date_range("2016-03-27 01:45", "2016-03-27 03:00", freq="15min")
    factors = _factors(semiurb, time)
    before, after = _raw(semiurb, "27.03.2016 01:45"), _raw(semiurb, "27.03.2016 03:00")
    np.testing.assert_allclose(factors[0], before, rtol=0, atol=0)
    np.testing.assert_allclose(factors[-1], after, rtol=0, atol=0)
    for k in range(1, 5):  # 02:00 … 02:45: linear between 01:45 and 03:00
        np.testing.assert_allclose(factors[k], before + (after - before) * k / 5, rtol=1e-12)


def test_autumn_repeated_hour_reads_its_first_pass(semiurb):
    time = pd.date_range("2016-10-30", periods=24 * 4, freq="15min")
    factors = _factors(semiurb, time)
    np.testing.assert_array_equal(factors[9], _raw(semiurb, "30.10.2016 02:15", 0))
    np.testing.assert_array_equal(factors[12], _raw(semiurb, "30.10.2016 03:00"))


def test_summer_stamps_read_the_same_wall_clock_time(semiurb):
    time = pd.DatetimeIndex(["2016-06-15 12:00", "2016-06-15 12:15"])
    factors = _factors(semiurb, time)
    np.testing.assert_array_equal(factors[0], _raw(semiurb, "15.06.2016 12:00"))
    np.testing.assert_array_equal(factors[1], _raw(semiurb, "15.06.2016 12:15"))


@pytest.mark.parametrize("start, days", [("2016-01-01", 366), ("2017-01-01", 365),
                                         ("2015-12-20", 120)])
def test_a_full_year_of_any_year_is_covered(semiurb, start, days):
    # 2017 skips its own 26 March hour, but reads 27 March 02:00 — the hour 2016 lacks.
    time = pd.date_range(start, periods=days * 24, freq="60min")
    factors = _factors(semiurb, time)
    assert factors.shape == (days * 24, len(semiurb.sgen))
    assert np.isfinite(factors).all() and (factors >= 0).all()


def test_a_table_missing_other_hours_still_names_the_first_stamp(semiurb):
    from scenarios.errors import InputError

    table = semiurb.profiles["renewables"]
    holed = table[~table["time"].str.startswith("02.05.2016 1")]
    time = pd.date_range("2016-05-01", periods=72, freq="60min")
    from scenarios.feeder import _profile_factors

    with pytest.raises(InputError, match=r"no profile value for 2016-05-02 10:00"):
        _profile_factors(holed, semiurb.sgen["profile"], time)


def test_class_shapes_follow_the_wall_clock_in_summer():
    """June weekdays' mean H0 shape at each wall-clock quarter hour, not an hour early."""
    from sim import shapes
    from sim.calendar import day_types_of_dates

    raw = pd.read_csv(shapes.simbench_load_profile_path(), sep=";", usecols=["time", "H0-A_pload"])
    stamp = pd.to_datetime(raw["time"], format="%d.%m.%Y %H:%M")
    june = raw[(stamp.dt.month == 6).to_numpy()].assign(stamp=stamp)
    days = pd.DatetimeIndex(june["stamp"].dt.normalize().unique())
    weekdays = days[day_types_of_dates(days, shapes.PROFILE_COUNTRY) == 0]
    june = june[june["stamp"].dt.normalize().isin(weekdays)]
    slot = (june["stamp"].dt.hour * 4 + june["stamp"].dt.minute // 15).to_numpy()
    expected = np.bincount(slot, weights=june["H0-A_pload"].to_numpy()) / np.bincount(slot)
    table = shapes.member_table("H0-A")[5, 0]  # June, weekday
    np.testing.assert_allclose(table / table.mean(), expected / expected.mean(), rtol=1e-9)
    frame = shapes.standard_profiles()
    assert frame.index.equals(pd.date_range("2016-01-01", periods=366 * 96, freq="15min"))


def _simulate(cli, tmp_path: Path, start: dt.date, days: int, *, step_min: int = 60,
              count: int = 8) -> xr.Dataset:
    data = merge(TINY_SCENARIO, {
        "network": {"source": GRID, "sgen_dispatch": "profiles"},
        "time": {"start": start, "days": days, "step_min": step_min, "design_days": 1},
        "customers": {"count": count},
    })
    path = tmp_path / "scenario.toml"
    path.write_text(to_toml(data))
    result = cli.invoke(app, ["simulate", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    with xr.open_dataset(tmp_path / "out" / "result.nc", engine="h5netcdf") as ds:
        loaded = ds.load()
    assert loaded.sizes["time"] == days * 24 * 60 // step_min
    assert bool(loaded["converged"].all())
    assert np.isfinite(loaded["p_slack_mw"].values).all()
    return loaded


@pytest.mark.parametrize("start", [dt.date(2016, 3, 26), dt.date(2016, 10, 29),
                                   dt.date(2019, 3, 26)])
def test_windows_across_a_clock_change_run(cli, tmp_path, start):
    _simulate(cli, tmp_path, start, 3)


def test_spring_fortnight_of_the_issue_runs(cli, tmp_path):
    """The window of the report: 14 days from 20 March 2016 on 1-LV-semiurb4."""
    _simulate(cli, tmp_path, dt.date(2016, 3, 20), 14)


def test_full_year_2016_runs(cli, tmp_path):
    ds = _simulate(cli, tmp_path, dt.date(2016, 1, 1), 366)
    assert str(ds["time"].values[-1])[:16] == "2016-12-31T23:00"


@pytest.mark.slow
def test_full_year_2016_at_15_min_runs(cli, tmp_path):
    _simulate(cli, tmp_path, dt.date(2016, 1, 1), 366, step_min=15, count=40)
