"""Meter files in long, wide and cumulative layouts screen to the same clean series."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.errors import InputError
from sim.quality import screen_meter_data

IDS = ("MTR-000123", "0012")


@pytest.fixture(scope="module")
def long_frame():
    rng = np.random.default_rng(2)
    time = pd.date_range("2016-05-02", periods=7 * 96, freq="15min")
    parts = [pd.DataFrame({"customer_id": cid, "timestamp": time.strftime("%Y-%m-%d %H:%M"),
                           "kwh": np.round(rng.uniform(0.05, 0.3, len(time)), 4)}) for cid in IDS]
    return pd.concat(parts, ignore_index=True)


def _screened(path):
    clean, report = screen_meter_data(path)
    return clean.sort_values(["customer_id", "timestamp"]).reset_index(drop=True), report


def test_wide_layout_equals_long(long_frame, tmp_path):
    long_path, wide_path = tmp_path / "long.csv", tmp_path / "wide.csv"
    long_frame.to_csv(long_path, index=False)
    long_frame.pivot(index="timestamp", columns="customer_id", values="kwh").reset_index() \
        .to_csv(wide_path, index=False)
    want, _ = _screened(long_path)
    got, report = _screened(wide_path)
    assert sorted(report["customer_id"]) == sorted(IDS)  # "0012" keeps its zeros as a header
    pd.testing.assert_frame_equal(got, want)


def test_cumulative_reads_give_interval_energy(long_frame, tmp_path):
    frame = long_frame.copy()
    frame["reading_kwh"] = frame.groupby("customer_id")["kwh"].cumsum().round(4)
    # A reading at each interval start: the register before the interval's energy.
    frame["reading_kwh"] = (frame["reading_kwh"] - frame["kwh"] + 1000.0).round(4)
    path = tmp_path / "cumulative.csv"
    frame[["customer_id", "timestamp", "reading_kwh"]].to_csv(path, index=False)
    got, _ = _screened(path)
    want = long_frame.groupby("customer_id", group_keys=False).apply(lambda f: f.iloc[:-1])
    for cid in IDS:
        np.testing.assert_allclose(got.loc[got.customer_id == cid, "kwh"].to_numpy(),
                                   want.loc[want.customer_id == cid, "kwh"].to_numpy(), atol=2e-4)


def test_wide_cumulative(long_frame, tmp_path):
    from sim.meter_files import read_meter_table

    wide = long_frame.pivot(index="timestamp", columns="customer_id", values="kwh").cumsum()
    path = tmp_path / "wide_cum.csv"
    wide.reset_index().to_csv(path, index=False)
    got = read_meter_table(path, cumulative=True)
    assert len(got) == len(long_frame) - len(IDS)
    assert set(got["customer_id"]) == set(IDS)


def test_unknown_layout_names_the_file(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("meter,when,value\nA,2016-01-01 00:00,1\n")
    with pytest.raises(InputError, match="odd.csv: missing column"):
        screen_meter_data(path)


def test_parquet_long_and_wide_equal_csv(long_frame, tmp_path):
    csv = tmp_path / "long.csv"
    long_frame.to_csv(csv, index=False)
    typed = long_frame.assign(timestamp=pd.to_datetime(long_frame["timestamp"]),
                              kwh=long_frame["kwh"].astype(float))
    typed.to_parquet(tmp_path / "long.parquet", index=False)
    typed.pivot(index="timestamp", columns="customer_id", values="kwh").reset_index() \
        .to_parquet(tmp_path / "wide.parquet", index=False)
    want, _ = _screened(csv)
    for name in ("long.parquet", "wide.parquet"):
        got, report = _screened(tmp_path / name)
        assert sorted(report["customer_id"]) == sorted(IDS), name
        pd.testing.assert_frame_equal(got, want)


_CELLS = st.one_of(st.sampled_from(["", " ", "MTR-1", "0012", "nan", "2016-01-01 00:00",
                                    "2016-03-27T02:15:00", "2016-01-01T00:00:00Z", "1e400",
                                    "-0.5", "0.25", "abc", "2016-13-45", '"', ","]),
                   st.text(max_size=8))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(_CELLS, _CELLS, _CELLS), max_size=30),
       st.sampled_from([("customer_id", "timestamp", "kwh"), ("customer_id", "timestamp",
                                                               "reading_kwh"),
                        ("timestamp", "A", "0012")]))
def test_garbage_meter_files_never_crash(rows, header):
    """Any text in any layout: screened, or one InputError; never another exception."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "meter.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        try:
            clean, report = screen_meter_data(path)
        except InputError:
            return
        assert set(clean["customer_id"]) <= set(report["customer_id"])
