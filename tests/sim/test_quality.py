"""Meter-data screening finds every fault injected into a clean simulated meter file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.errors import InputError
from scenarios.schema import WeatherConfig
from sim.profiles import simulate_profiles
from sim.quality import REPORT_COUNTS, UNATTRIBUTED, ScreeningConfig, screen_meter_data
from sim.weather import build_weather
from tests.sim.population_factory import make_population

SPRING, FALL = pd.Timestamp("2016-03-27"), pd.Timestamp("2016-10-30")
CUSTOMERS = 10


def _true_series() -> dict[int, pd.Series]:
    """Energy per 15 min on the naive local grid, from before spring to after autumn DST [kWh]."""
    population = make_population(CUSTOMERS, seed=2, first_id=1)
    time = pd.date_range("2016-03-24", "2016-11-01", freq="15min", inclusive="left")
    weather = build_weather(WeatherConfig(), time, seed=1, base_dir=Path("."))
    ds = simulate_profiles(population, weather, seed=4, country="DE")
    gross = (ds["p_kw"] + ds["pv_kw"]).values * 0.25
    series = {int(cid): pd.Series(np.round(gross[i], 4), index=time)
              for i, cid in enumerate(ds["customer"].values)}
    # Only the DST customers need the whole span; the others keep ten spring days.
    return {c: (v if c >= 8 else v[:"2016-04-02"]) for c, v in series.items()}


def _local_meter_rows(cid: int, series: pd.Series) -> list[tuple]:
    """What a local wall-clock meter logs: no 02:xx on the spring day, 02:xx twice in autumn."""
    rows = []
    for stamp, kwh in series.items():
        if stamp.normalize() == SPRING and stamp.hour == 2:
            continue
        rows.append((str(cid), stamp.isoformat(), f"{kwh:.4f}"))
        if stamp.normalize() == FALL and stamp.hour == 2:
            rows.append((str(cid), stamp.isoformat(), f"{kwh:.4f}"))  # second (CET) reading
    return rows


@pytest.fixture(scope="module")
def truth():
    return _true_series()


ID_STYLES = {"numeric": str, "text": lambda cid: f"MTR-{cid:06d}", "zeros": lambda cid: f"{cid:04d}"}


@pytest.fixture(scope="module", params=sorted(ID_STYLES))
def name(request):
    """The meter ID of customer ``cid`` in each ID style: the screening must not care."""
    return ID_STYLES[request.param]


@pytest.fixture(scope="module")
def screened(truth, name, tmp_path_factory):
    rows: list[tuple] = []
    for cid, series in truth.items():
        if cid == 8:  # logged in UTC with explicit offsets
            aware = series.index.tz_localize("Europe/Berlin", ambiguous=True,
                                             nonexistent="NaT")
            keep = ~aware.isna()
            for stamp, kwh in zip(aware[keep].tz_convert("UTC"), series[keep], strict=True):
                rows.append((str(cid), stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{kwh:.4f}"))
            continue
        if cid == 9:  # clock on standard time all year: summer stamps an hour behind
            for stamp, kwh in series.items():
                if stamp.normalize() == SPRING and stamp.hour == 2:
                    continue  # local time that never happened
                summer = SPRING + pd.Timedelta(hours=3) <= stamp < FALL + pd.Timedelta(hours=3)
                clock = stamp - pd.Timedelta(hours=1) if summer else stamp
                rows.append((str(cid), clock.isoformat(), f"{kwh:.4f}"))
                if stamp.normalize() == FALL and stamp.hour == 2:
                    rows.append((str(cid), stamp.isoformat(), f"{kwh:.4f}"))  # the CET hour
            continue
        rows += _local_meter_rows(cid, series)
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "kwh"])

    def where(cid, stamp):
        return frame.index[(frame.customer_id == str(cid)) & (frame.timestamp == stamp)][0]

    drop = []
    drop += [where(1, f"2016-03-25T1{h}:00:00") for h in (0,)]  # short gap: 3 steps
    drop += [where(1, "2016-03-25T10:15:00"), where(1, "2016-03-25T10:30:00")]
    day = pd.date_range("2016-03-29", periods=96, freq="15min")
    drop += [where(2, s.isoformat()) for s in day]  # long gap: one day
    dup = frame.loc[[where(3, "2016-03-25T12:00:00"), where(3, "2016-03-25T12:15:00")]]
    conflict = frame.loc[[where(3, "2016-03-25T13:00:00")]].assign(kwh="0.9999")
    frame.loc[where(4, "2016-03-26T08:00:00"), "kwh"] = "-0.5000"
    frame.loc[where(4, "2016-03-26T09:00:00"), "kwh"] = "100000"
    frame.loc[where(5, "2016-03-26T03:00:00"), "kwh"] = "20.0000"  # 80 kW for 15 min at night
    for s in pd.date_range("2016-03-30 09:00", periods=20, freq="15min"):
        frame.loc[where(6, s.isoformat()), "kwh"] = "0.1234"
    frame.loc[where(7, "2016-03-25T06:00:00"), "timestamp"] = "2016-13-45 99:99"
    frame.loc[where(7, "2016-03-25T07:00:00"), "kwh"] = "n/a"
    frame.loc[where(7, "2016-03-25T08:00:00"), "customer_id"] = " "
    frame = pd.concat([frame.drop(index=drop), dup, conflict], ignore_index=True)
    frame = frame.sample(frac=1.0, random_state=1)  # order must not matter
    frame["customer_id"] = [name(int(c)) if c.strip() else c for c in frame["customer_id"]]
    path = tmp_path_factory.mktemp("meter") / "meter.csv"
    frame.to_csv(path, index=False)
    clean, report = screen_meter_data(path, ScreeningConfig(tz="Europe/Berlin"))
    return clean, report.set_index("customer_id")


EXPECTED = {
    1: {"missing_steps": 3, "repaired_steps": 3},
    2: {"missing_steps": 96, "long_gaps": 1, "long_gap_steps": 96},
    3: {"duplicates": 2, "conflicting_duplicates": 1},
    4: {"negative": 1, "impossible": 1, "repaired_steps": 2},
    5: {"spikes": 1, "repaired_steps": 1},
    6: {"stuck_steps": 20, "long_gaps": 1, "long_gap_steps": 20},
    7: {"bad_rows": 2, "missing_steps": 3, "repaired_steps": 3},  # the blank-id row: "(none)"
}
EXPECTED_ROWS_FREE = ("tz_converted", "dst_filled", "dst_merged", "dst_clock_corrected", "rows")


@pytest.mark.parametrize("cid", sorted(EXPECTED))
def test_every_injected_fault_is_found(screened, name, cid):
    _, report = screened
    row = report.loc[name(cid)]
    for name in REPORT_COUNTS:
        if name in EXPECTED_ROWS_FREE:
            continue
        assert row[name] == EXPECTED[cid].get(name, 0), (cid, name, row[name])


def test_clean_customer_has_no_findings(screened, name):
    _, report = screened
    row = report.loc[name(10)]
    assert row["status"] == "ok"
    assert row["dst_filled"] == 4 and row["dst_merged"] == 4
    for name in REPORT_COUNTS:
        if name not in EXPECTED_ROWS_FREE:
            assert row[name] == 0, name


def test_unattributed_rows_are_reported(screened):
    _, report = screened
    assert report.loc[UNATTRIBUTED, "bad_rows"] == 1


def test_ids_are_kept_as_written(screened, name):
    clean, report = screened
    want = {name(cid) for cid in range(1, CUSTOMERS + 1)}
    assert set(clean["customer_id"]) == want
    assert set(report.index) == want | {UNATTRIBUTED}


def test_time_zone_and_dst_faults(screened, truth, name):
    clean, report = screened
    assert report.loc[name(8), "tz_converted"] > 0 and report.loc[name(8), "status"] == "ok"
    assert report.loc[name(9), "dst_clock_corrected"] > 0
    for cid in (8, 9):
        got = clean[clean.customer_id == name(cid)].set_index("timestamp")["kwh"]
        want = truth[cid].reindex(got.index)
        ok = clean[clean.customer_id == name(cid)].set_index("timestamp")["flag"] == "ok"
        np.testing.assert_allclose(got[ok], want[ok], atol=1e-4)


def test_repairs_are_marked_and_values_restored(screened, truth, name):
    clean, report = screened
    c1 = clean[clean.customer_id == name(1)].set_index("timestamp")
    assert (c1.loc["2016-03-25 10:00":"2016-03-25 10:30", "flag"] == "repaired").all()
    c2 = clean[clean.customer_id == name(2)].set_index("timestamp")
    assert c2.loc["2016-03-29", "kwh"].isna().all() and (c2.loc["2016-03-29", "flag"] == "gap").all()
    c5 = clean[clean.customer_id == name(5)].set_index("timestamp")
    assert c5.loc["2016-03-26 03:00", "kwh"] < 1.0
    assert report.loc[name(2), "status"] == "incomplete"
    assert report.loc[name(4), "status"] == "repaired"
    # Every clean series sits on a regular 15-min grid.
    for _, part in clean.groupby("customer_id"):
        assert (np.diff(part["timestamp"].to_numpy()) == np.timedelta64(15, "m")).all()


def test_frame_input_and_errors(tmp_path):
    frame = pd.DataFrame({"customer_id": [1, 1, 1], "timestamp": pd.date_range("2016-01-01", periods=3, freq="h").astype(str),
                          "kwh": [0.1, 0.2, 0.3]})
    clean, report = screen_meter_data(frame)
    assert len(clean) == 3 and report.loc[0, "status"] == "ok"
    with pytest.raises(InputError, match="missing column"):
        screen_meter_data(frame.drop(columns="kwh"))
    with pytest.raises(InputError, match="not found"):
        screen_meter_data(tmp_path / "none.csv")
    (tmp_path / "m.parquet").write_bytes(b"PAR1")
    with pytest.raises(InputError, match="pyarrow|Parquet"):
        screen_meter_data(tmp_path / "m.parquet")
