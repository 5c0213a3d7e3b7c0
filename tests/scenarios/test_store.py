"""Data store (DuckDB): import with screening and quarantine, runs from the store identical to runs
from files, lineage, personal fields kept in the store, bad input exit 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from scenarios.cli import app
from tests.scenarios.test_meter_loads import METERS, _meter_frame

runner = CliRunner()


def _counts(store: str) -> dict[str, int]:
    from scenarios.store import TABLES, open_store

    opened = open_store(store)
    try:
        return {table: opened.count(table) for table in TABLES}
    finally:
        opened.close()


@pytest.fixture(scope="module")
def store_case(make_scenario, tmp_path_factory):
    """Meter file and register (with a personal column), imported into a store; the same scenario
    run once from files and once from the store."""
    folder = tmp_path_factory.mktemp("store-run")
    meter = _meter_frame()
    meter.to_csv(folder / "meter.csv", index=False)
    register = pd.DataFrame({"customer_id": [m[0] for m in METERS], "bus": [m[1] for m in METERS],
                             "segment": "residential", "feeder": ["F1", "F1", "F2", "F2"],
                             "name": ["Ada Zed", "Bo Yuki", "Cy Xeno", "Di Wolf"]})
    register.to_csv(folder / "register.csv", index=False)
    store = str(folder / "store")
    for kind, name in (("meter", "meter.csv"), ("register", "register.csv")):
        done = runner.invoke(app, ["store", "import", kind, str(folder / name), "--store", store])
        assert done.exit_code == 0, done.output
    base = {"time": {"start": "2016-01-12", "days": 2, "step_min": 60}}
    from_files = make_scenario({**base, "customers": {
        "source": "meter", "meter_file": str(folder / "meter.csv"),
        "register_file": str(folder / "register.csv"), "count": 20}})
    from_store = make_scenario({**base, "customers": {"source": "meter", "store": store,
                                                      "count": 20}})
    outs = {}
    for label, scenario in (("files", from_files), ("store", from_store)):
        outs[label] = folder / f"out-{label}"
        done = runner.invoke(app, ["simulate", str(scenario), "-o", str(outs[label])])
        assert done.exit_code == 0, done.output
    return folder, store, outs, make_scenario


def test_same_scenario_from_files_and_store_gives_identical_result(store_case):
    _, _, outs, _ = store_case
    with xr.open_dataset(outs["files"] / "result.nc", engine="h5netcdf") as a, \
            xr.open_dataset(outs["store"] / "result.nc", engine="h5netcdf") as b:
        assert sorted(a.data_vars) == sorted(b.data_vars)
        for name in a.data_vars:
            assert np.array_equal(a[name].values, b[name].values), name  # bitwise, NaN-free
        assert a.attrs.keys() == b.attrs.keys()


def test_personal_fields_stay_in_the_store(store_case):
    _, store, outs, _ = store_case
    for path in outs["store"].rglob("*"):
        if path.is_file():
            assert b"Ada Zed" not in path.read_bytes(), path
    from scenarios.store import open_store

    opened = open_store(store)
    try:
        (personal,) = opened.execute(
            "SELECT personal FROM register_fields WHERE field = ?", ("name",)).fetchone()
    finally:
        opened.close()
    assert personal


def test_lineage_names_tables_rows_and_output(store_case):
    _, store, outs, _ = store_case
    done = runner.invoke(app, ["store", "lineage", "--store", store])
    assert done.exit_code == 0, done.output
    assert "meter_reads" in done.output and "register" in done.output
    assert str(outs["store"]) in done.output
    rows = len(_meter_frame())
    assert str(rows) in done.output  # every read of the 4 meters


def test_import_quarantines_unreadable_rows_with_reason(tmp_path):
    meter = _meter_frame().astype(str)
    meter.loc[3, "kwh"] = "abc"
    meter.loc[9, "timestamp"] = "yesterday"
    meter.to_csv(tmp_path / "meter.csv", index=False)
    store = str(tmp_path / "store")
    done = runner.invoke(app, ["store", "import", "meter", str(tmp_path / "meter.csv"),
                               "--store", store])
    assert done.exit_code == 0, done.output
    assert "2 row(s) quarantined" in done.output
    from scenarios.store import open_store

    opened = open_store(store)
    try:
        rows = opened.execute("SELECT line, field, value, reason FROM quarantine ORDER BY line"
                              ).fetchall()
        kept = opened.count("meter_reads")
    finally:
        opened.close()
    assert rows == [(5, "kwh", "abc", "kwh: not a finite number"),
                    (11, "timestamp", "yesterday", "timestamp: unreadable")]
    assert kept == len(meter) - 2


def test_pseudonymized_run_carries_keyed_pseudonyms(store_case, monkeypatch):
    folder, store, _, make_scenario = store_case
    scenario = make_scenario({"time": {"start": "2016-01-12", "days": 1, "step_min": 60},
                              "customers": {"source": "meter", "store": store, "count": 4,
                                            "store_feeder": "F2", "pseudonymize": True}})
    out = folder / "out-pseudo"
    done = runner.invoke(app, ["simulate", str(scenario), "-o", str(out)])
    assert done.exit_code == 1 and "GRIDFLEX_PSEUDONYM_KEY" in done.output
    monkeypatch.setenv("GRIDFLEX_PSEUDONYM_KEY", "secret-1")
    done = runner.invoke(app, ["simulate", str(scenario), "-o", str(out)])
    assert done.exit_code == 0, done.output
    from scenarios.store_queries import pseudonym

    with xr.open_dataset(out / "result.nc", engine="h5netcdf") as ds:
        ids = ds["customer_id"].values[ds["measured"].values.astype(bool)].tolist()
    assert ids == [pseudonym("C7", "secret-1"), pseudonym("C8", "secret-1")]  # feeder F2 only


@pytest.mark.parametrize("args, message", [
    (["store", "import", "meter", "{bad_columns}", "--store", "{store}"],
     "missing column(s): expected customer_id,timestamp,kwh"),
    (["store", "import", "meter", "{mixed}", "--store", "{store}"], "switch interval length"),
    (["store", "import", "register", "{meter}", "--store", "{store}"], "column 'bus'"),
    (["store", "calibrate", "--store", "{store}", "--bus", "12", "--customers",
      "C7,x'); DROP TABLE meter_reads; --"],
     "table meter_reads, field 'customer_id': 1 customer(s) not in the store: "
     "\"x'); DROP TABLE meter_reads; --\""),
    (["store", "calibrate", "--store", "{store}", "--bus", "12", "--customers", "NOPE"],
     "table meter_reads, field 'customer_id': 1 customer(s) not in the store: 'NOPE'"),
    (["store", "calibrate", "--store", "postgresql://planner:pw@127.0.0.1:9/none", "--bus", "1"],
     "store postgresql://planner:***@127.0.0.1:9/none"),
    (["store", "lineage", "--store", "{tmp}/nowhere"], "no store here"),
])
def test_bad_store_input_is_exit_1_and_store_unchanged(args, message, store_case, tmp_path):
    folder, store, _, _ = store_case
    pd.DataFrame({"meter": ["a"], "when": ["2016-01-01"], "kwh": ["1"]}).to_csv(
        tmp_path / "bad.csv", index=False)
    stamps = pd.date_range("2016-01-01", periods=20, freq="15min").append(
        pd.date_range("2016-01-01 05:00", periods=20, freq="60min"))
    pd.DataFrame({"customer_id": "NEW", "timestamp": stamps.strftime("%Y-%m-%d %H:%M"),
                  "kwh": "0.5"}).to_csv(tmp_path / "mixed.csv", index=False)
    names = {"bad_columns": str(tmp_path / "bad.csv"), "mixed": str(tmp_path / "mixed.csv"),
             "meter": str(folder / "meter.csv"), "store": store, "tmp": str(tmp_path)}
    before = _counts(store)
    done = runner.invoke(app, [a.format(**names) for a in args])
    assert done.exit_code == 1, done.output
    assert message in done.output
    assert len(done.output.strip().splitlines()) == 1
    assert _counts(store) == {**before, "lineage": _counts(store)["lineage"]}
    assert _counts(store)["imports"] == before["imports"]


def test_import_in_chunks_equals_import_whole(tmp_path, monkeypatch):
    """Chunked reading and screening per batch of meters change nothing stored."""
    import scenarios.store_imports as imports
    from scenarios.store import open_store
    from scenarios.store_queries import meter_frame

    meter = _meter_frame().astype(str)
    meter.loc[1500, "kwh"] = "n/a"
    meter.to_csv(tmp_path / "meter.csv", index=False)
    stored = {}
    for label, rows in (("whole", 10**6), ("chunks", 333)):
        monkeypatch.setattr(imports, "CHUNK_ROWS", rows)
        said = imports.import_file(tmp_path / label, "meter", tmp_path / "meter.csv")
        assert "1 row(s) quarantined" in said and "screening: 4 meter(s)" in said
        opened = open_store(tmp_path / label)
        try:
            stored[label] = (meter_frame(opened, [m[0] for m in METERS]),
                             opened.execute("SELECT line, reason FROM quarantine").fetchall())
        finally:
            opened.close()
    pd.testing.assert_frame_equal(stored["whole"][0], stored["chunks"][0])
    assert stored["whole"][1] == stored["chunks"][1] == [(1502, "kwh: not a finite number")]
