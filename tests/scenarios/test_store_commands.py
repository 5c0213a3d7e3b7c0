"""calibrate, mv and credit fit read from the store give the same outputs as from the files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scenarios.cli import app
from tests.scenarios.test_credit_book import write_book
from tests.scenarios.test_mv import _loads

runner = CliRunner()
EVENT_DAYS = ("2016-04-05", "2016-04-07", "2016-04-12")


def _ok(args: list[str]) -> str:
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    return done.output


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """8 meters at 15 min over 6 weeks with events, a small payment book, both in a store."""
    folder = tmp_path_factory.mktemp("store-commands")
    time = pd.date_range("2016-03-07", "2016-04-18", freq="15min", inclusive="left")
    kw = _loads(time, np.full(len(time), 8.0), 8, seed=4)
    event = np.isin(time.normalize(), pd.DatetimeIndex(EVENT_DAYS)) & (time.hour >= 17) & (
        time.hour < 19)
    kw = np.where(event[None, :], 0.7 * kw, kw)
    ids = [f"M-{i:03d}" for i in range(kw.shape[0])]
    pd.DataFrame({"customer_id": np.repeat(ids, len(time)),
                  "timestamp": np.tile(time.strftime("%Y-%m-%d %H:%M"), len(ids)),
                  "kwh": (kw * 0.25).ravel().round(6)}).to_csv(folder / "meter.csv", index=False)
    pd.DataFrame({"date": EVENT_DAYS, "start": "17:00", "end": "19:00"}).to_csv(
        folder / "events.csv", index=False)
    write_book(folder / "book.csv", 300, months=24)
    store = str(folder / "store")
    for kind, name in (("meter", "meter.csv"), ("events", "events.csv"), ("payments", "book.csv")):
        _ok(["store", "import", kind, str(folder / name), "--store", store])
    return folder, store


def test_calibrate_from_store_equals_from_file(case):
    folder, store = case
    _ok(["calibrate", str(folder / "meter.csv"), "--bus", "3", "-o", str(folder / "a.csv")])
    _ok(["store", "calibrate", "--store", store, "--bus", "3", "-o", str(folder / "b.csv")])
    assert (folder / "a.csv").read_bytes() == (folder / "b.csv").read_bytes()


def test_mv_from_store_equals_from_files(case):
    folder, store = case
    _ok(["mv", str(folder / "meter.csv"), str(folder / "events.csv"), "-o", str(folder / "mv-a")])
    said = _ok(["store", "mv", "--store", store, "-o", str(folder / "mv-b")])
    assert "table events" in said or "table meter_reads" in said or "wrote" in said
    for name in ("mv_events.csv", "mv_accuracy.csv"):
        assert (folder / "mv-a" / name).read_bytes() == (folder / "mv-b" / name).read_bytes()


def test_credit_fit_from_store_equals_from_file(case):
    folder, store = case
    _ok(["credit", "fit", str(folder / "book.csv"), "-o", str(folder / "a.json")])
    said = _ok(["store", "credit-fit", "--store", store, "-o", str(folder / "b.json")])
    assert f"store {store}, table payments" in said
    a, b = (json.loads((folder / n).read_text()) for n in ("a.json", "b.json"))
    assert b.pop("source") == f"store {store}, table payments"
    a.pop("source")
    assert a == b
    lineage = _ok(["store", "lineage", "--store", store])
    assert "payments" in lineage and str(folder / "b.json") in lineage
