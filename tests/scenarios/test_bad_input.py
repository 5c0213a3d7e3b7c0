"""Bad input through the command line: one line naming file, field/row and problem; exit 1.

Every case starts from the tiny valid scenario of `conftest.py` and breaks one thing. Each is
run through `scenarios.cli:app` (CliRunner) and must print exactly one ``error:`` line on
stderr naming the file and the field or row, exit 1, print no traceback, and leave no output
folder (nor a staging folder) behind. A few cases run in a real subprocess to prove that no
traceback reaches the terminal, and that ``--debug`` does show one.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from scenarios.cli import app

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class BadCase:
    """One way to break the tiny scenario, and what the error line must say."""

    id: str
    expect: tuple[str, ...]  # fragments of the error line, besides the file name
    overrides: dict[str, Any] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    files: dict[str, str | bytes] = field(default_factory=dict)
    text: str | None = None
    named_file: str | None = None  # the file the message must name (default: the scenario)
    command: str = "run"


def _data(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def weather_csv(
    start: str = "2016-01-11", hours: int = 72, *, kelvin: bool = False, kw_m2: bool = False,
    drop_hours: range = range(0), column: str = "ghi_w_m2",
) -> str:
    """A plausible hourly weather file around the tiny scenario's day, with optional faults."""
    stamps = pd.date_range(start, periods=hours, freq="h")
    hour = stamps.hour.to_numpy()
    temperature = 2.0 + 4.0 * np.sin((hour - 9) / 24 * 2 * np.pi) + (273.15 if kelvin else 0.0)
    ghi = np.clip(300.0 * np.sin((hour - 7) / 10 * np.pi), 0.0, None) / (1000.0 if kw_m2 else 1.0)
    rows = [f"timestamp,temperature_c,{column}"]
    for i, (t, c, g) in enumerate(zip(stamps, temperature, ghi, strict=True)):
        if i not in drop_hours:
            rows.append(f"{t:%Y-%m-%d %H:%M},{c:.2f},{g:.3f}")
    return "\n".join(rows) + "\n"


WEATHER_FILE = {"weather": {"source": "file", "file": "weather.csv"}}
CUSTOMERS_FILE = {"customers": {"source": "file", "file": "customers.csv"}}
POLICIES_ALL = {tier: {} for tier in "ABCD"}

CASES: list[BadCase] = [
    # --- the scenario file itself -------------------------------------------------------------
    BadCase("malformed-toml", ("malformed TOML", "line 3"), text='name = "x"\n\n[network\n'),
    BadCase("not-utf8", ("cannot read scenario", "UnicodeDecodeError"), text=None,
            files={"scenario.toml": b"name = \"\xff\xfe\"\n"}),
    BadCase("empty-file", ("name: required field is missing", "(and 3 more)"), text=""),
    BadCase("unknown-top-key", ("seeed: unknown key (check the spelling)",), overrides={"seeed": 4}),
    BadCase("unknown-nested-key", ("customers.evshare: unknown key",),
            overrides={"customers": {"evshare": 0.2}}),
    BadCase("missing-required", ("network: required field is missing",), drop=("network",)),
    BadCase("out-of-range", ("customers.ev_share: Input should be less than or equal to 1",),
            overrides={"customers": {"ev_share": 1.5}}),
    BadCase("negative-count", ("customers.count: Input should be greater than or equal to 1",),
            overrides={"customers": {"count": -5}}),
    BadCase("wrong-type", ("time.days: Input should be a valid integer",),
            overrides={"time": {"days": "seven"}}),
    BadCase("days-as-string", ("time.days: Input should be a valid integer",),
            overrides={"time": {"days": "2"}}, command="check"),
    BadCase("days-as-bool", ("time.days: Input should be a valid integer",),
            overrides={"time": {"days": True}}, command="check"),
    BadCase("share-as-string", ("customers.ev_share: Input should be a valid number",),
            overrides={"customers": {"ev_share": "0.2"}}, command="check"),
    BadCase("flag-as-int", ("limits.never_raise_peak: Input should be a valid boolean",),
            overrides={"limits": {"never_raise_peak": 1}}, command="check"),
    BadCase("start-year-2300", ("time.start: 2300-01-01 is outside the supported years 1900–2200",),
            overrides={"time": {"start": dt.date(2300, 1, 1)}}),
    BadCase("start-year-1", ("time.start: 0001-01-01 is outside the supported years",),
            overrides={"time": {"start": dt.date(1, 1, 1)}}),
    BadCase("nan-budget", ("limits.budget_eur: Input should be greater than or equal to 0",),
            overrides={"limits": {"budget_eur": float("nan")}}),
    BadCase("bad-step", ("time.step_min: Input should be 5, 10, 15, 30 or 60",),
            overrides={"time": {"step_min": 7}}),
    BadCase("design-days-exceed", ("time: design_days (3) exceeds days (1)",),
            overrides={"time": {"design_days": 3}}),
    BadCase("segment-mix", ("customers.mix: segment shares must sum to 1",),
            overrides={"customers": {"mix": {"residential": 0.9, "commercial": 0.3}}}),
    BadCase("network-scheme", ("network.source: must be 'pandapower:NAME'",),
            overrides={"network": {"source": "cigre_lv"}}),
    # --- offers and tiers ---------------------------------------------------------------------
    BadCase("tou-overlap", ("offers.tariffs[1]", "TOU period 'peak' overlaps the one before it at 16 h"),
            overrides={"offers": {"tariffs": [
                {"name": "flat", "kind": "flat", "price_eur_per_kwh": 0.3},
                {"name": "tou", "kind": "tou", "periods": [
                    {"name": "night", "start_h": 0, "end_h": 7, "price_eur_per_kwh": 0.2},
                    {"name": "day", "start_h": 7, "end_h": 17, "price_eur_per_kwh": 0.3},
                    {"name": "peak", "start_h": 16, "end_h": 24, "price_eur_per_kwh": 0.5},
                ]},
            ]}}),
    BadCase("tou-gap", ("offers.tariffs[1]", "TOU periods leave a gap from 17 h to 18 h"),
            overrides={"offers": {"tariffs": [
                {"name": "flat", "kind": "flat", "price_eur_per_kwh": 0.3},
                {"name": "tou", "kind": "tou", "periods": [
                    {"name": "night", "start_h": 0, "end_h": 7, "price_eur_per_kwh": 0.2},
                    {"name": "day", "start_h": 7, "end_h": 17, "price_eur_per_kwh": 0.3},
                    {"name": "peak", "start_h": 18, "end_h": 24, "price_eur_per_kwh": 0.5},
                ]},
            ]}}),
    BadCase("current-tariff-missing", ("offers: current_tariff 'standard' is not in the tariff menu",),
            overrides={"offers": {"current_tariff": "standard"}}),
    BadCase("duplicate-offer-names", ("offer names must be unique; repeated: tou",),
            overrides={"offers": {"curtailment": [{"name": "tou", "kw": 2.0}]}}),
    BadCase("policy-unknown-offer", ("credit.policies.C.eligible_offers names unknown offers: ev-pauze",),
            overrides={"credit": {"policies": {**POLICIES_ALL, "C": {"eligible_offers": ["flat", "ev-pauze"]}}}}),
    BadCase("policy-no-offer", ("credit.policies.D.eligible_offers: empty list leaves tier D without any offer",),
            overrides={"credit": {"policies": {**POLICIES_ALL, "D": {"eligible_offers": []}}}}),
    BadCase("policy-excludes-status-quo",
            ("credit.policies.B.eligible_offers: must include the current tariff 'flat'",),
            overrides={"credit": {"policies": {**POLICIES_ALL, "B": {"eligible_offers": ["tou"]}}}}),
    BadCase("policy-unknown-tier", ("credit.policies.E", "Input should be 'A', 'B', 'C' or 'D'"),
            overrides={"credit": {"policies": {"E": {"deposit_eur": 10.0}}}}),
    # --- paths --------------------------------------------------------------------------------
    BadCase("path-escapes", ("weather.file: relative path '../weather.csv' escapes the scenario folder",),
            overrides={"weather": {"source": "file", "file": "../weather.csv"}}),
    BadCase("net-path-escapes", ("network.source: relative path '../../etc/net.json' escapes",),
            overrides={"network": {"source": "file:../../etc/net.json"}}),
    BadCase("weather-file-missing", ("weather.file: file not found",), overrides=WEATHER_FILE),
    BadCase("customers-file-missing", ("customers.file: file not found",), overrides=CUSTOMERS_FILE),
    # --- network ------------------------------------------------------------------------------
    BadCase("unknown-pandapower-net", ("network.source", "no_such_feeder"),
            overrides={"network": {"source": "pandapower:no_such_feeder"}}),
    BadCase("unknown-simbench-code", ("network.source", "1-LV-nowhere--0-sw"),
            overrides={"network": {"source": "simbench:1-LV-nowhere--0-sw"}}),
    BadCase("unknown-country", ("time.country: no public-holiday calendar for 'XX'",),
            overrides={"time": {"country": "XX"}}),
    BadCase("unknown-country-check", ("time.country: no public-holiday calendar for 'QQ'",),
            overrides={"time": {"country": "QQ"}}, command="check"),
    BadCase("net-json-not-pandapower", ("network.source", "is not a pandapower net"),
            overrides={"network": {"source": "file:net.json"}},
            files={"net.json": _data("net_not_pandapower.json")}, named_file="net.json"),
    BadCase("net-json-without-slack", ("network.source", "has no in-service ext_grid (slack)"),
            overrides={"network": {"source": "file:net.json"}},
            files={"net.json": _data("net_no_slack.json")}, named_file="net.json"),
    BadCase("net-not-json", ("network.source", "is not valid JSON"),
            overrides={"network": {"source": "file:net.json"}},
            files={"net.json": _data("net_not_json.json")}, named_file="net.json"),
    BadCase("net-json-foreign-object", ("network.source", "embeds a disallowed object", "subprocess"),
            overrides={"network": {"source": "file:net.json"}},
            files={"net.json": _data("net_foreign_object.json")}, named_file="net.json"),
    # --- customers CSV ------------------------------------------------------------------------
    BadCase("customers-missing-column", ("column 'annual_kwh': required column is missing",),
            overrides=CUSTOMERS_FILE, files={"customers.csv": _data("customers_missing_column.csv")},
            named_file="customers.csv"),
    BadCase("customers-nan", ("line 3, column 'annual_kwh': is missing",),
            overrides=CUSTOMERS_FILE, files={"customers.csv": _data("customers_nan.csv")},
            named_file="customers.csv"),
    BadCase("customers-negative-energy", ("line 4, column 'annual_kwh': -21000 is outside",),
            overrides=CUSTOMERS_FILE, files={"customers.csv": _data("customers_negative_energy.csv")},
            named_file="customers.csv"),
    BadCase("customers-unknown-bus", ("line 3, column 'bus': bus 9999 is not in the network",),
            overrides=CUSTOMERS_FILE, files={"customers.csv": _data("customers_unknown_bus.csv")},
            named_file="customers.csv"),
    BadCase("customers-duplicate-id", ("line 4, column 'customer_id': duplicate id 1",),
            overrides=CUSTOMERS_FILE, files={"customers.csv": _data("customers_duplicate_id.csv")},
            named_file="customers.csv"),
    BadCase("customers-bad-bool", ("line 2, column 'has_ev': 'maybe' is not true/false",),
            overrides=CUSTOMERS_FILE, files={"customers.csv": _data("customers_bad_bool.csv")},
            named_file="customers.csv"),
    BadCase("customers-empty", ("no customer rows",), overrides=CUSTOMERS_FILE,
            files={"customers.csv": "customer_id,bus,segment,annual_kwh\n"}, named_file="customers.csv"),
    # --- weather CSV --------------------------------------------------------------------------
    BadCase("weather-gap", ("row", "gap of 10 h before this row"), overrides=WEATHER_FILE,
            files={"weather.csv": weather_csv(drop_hours=range(30, 39))}, named_file="weather.csv"),
    BadCase("weather-kelvin", ("temperature_c looks like Kelvin",), overrides=WEATHER_FILE,
            files={"weather.csv": weather_csv(kelvin=True)}, named_file="weather.csv"),
    BadCase("weather-kw-per-m2", ("ghi_w_m2 never exceeds", "is it in kW/m2"), overrides=WEATHER_FILE,
            files={"weather.csv": weather_csv(kw_m2=True)}, named_file="weather.csv"),
    BadCase("weather-wrong-column", ("missing column(s) ghi_w_m2",), overrides=WEATHER_FILE,
            files={"weather.csv": weather_csv(column="ghi_kw_m2")}, named_file="weather.csv"),
    BadCase("weather-too-short", ("covers", "but the simulation needs"), overrides=WEATHER_FILE,
            files={"weather.csv": weather_csv(start="2016-01-12 06:00", hours=6)},
            named_file="weather.csv"),
]

# --- unbalanced power flow (issue 21) -----------------------------------------------------------
_PHASED = _data("customers_ok.csv").splitlines()
CASES += [
    BadCase("customers-bad-phase", ("line 3, column 'phase': 'd' is not a, b, c or abc",),
            overrides=CUSTOMERS_FILE, named_file="customers.csv",
            files={"customers.csv": "\n".join(
                [_PHASED[0] + ",phase"] + [row + ("," + "adc"[i % 3]) for i, row in
                                          enumerate(_PHASED[1:])]) + "\n"}),
    BadCase("unbalanced-without-zero-sequence",
            ("network: line 0 has no 'r0_ohm_per_km'", "zero-sequence"),
            overrides={"network": {"source": "pandapower:cigre_lv", "phases": "unbalanced"}},
            named_file=""),
]


def _single_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def _make(make_scenario, case: BadCase) -> Path:
    files = dict(case.files)
    raw = files.pop("scenario.toml", None)
    path = make_scenario(case.overrides, drop=case.drop, files=files, text=case.text)
    if raw is not None:
        path.write_bytes(raw)
    return path


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line_exit_1_and_writes_nothing(make_scenario, cli, tmp_path, case):
    path = _make(make_scenario, case)
    out = tmp_path / "out"
    args = [case.command, str(path)] + (["-o", str(out)] if case.command != "check" else [])
    result = cli.invoke(app, args)
    line = _single_error_line(result.stderr)
    assert result.exit_code == 1, line
    named = str(path) if case.named_file is None else case.named_file
    assert named in line
    for fragment in case.expect:
        assert fragment in line
    assert "Traceback" not in result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left next to the output either


def test_the_valid_base_files_pass_where_the_broken_ones_fail(make_scenario, cli):
    """The bad-input cases fail because of what they change, not because the base is broken."""
    path = make_scenario(
        {**WEATHER_FILE, **CUSTOMERS_FILE},
        files={"weather.csv": weather_csv(), "customers.csv": _data("customers_ok.csv")},
    )
    result = cli.invoke(app, ["check", str(path)])
    assert result.exit_code == 0, result.stderr


def test_symlink_out_of_the_scenario_folder_is_refused(make_scenario, cli, tmp_path):
    outside = tmp_path / "elsewhere.csv"
    outside.write_text(_data("customers_ok.csv"))
    path = make_scenario(CUSTOMERS_FILE)
    (path.parent / "customers.csv").symlink_to(outside)
    result = cli.invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    line = _single_error_line(result.stderr)
    assert "customers.file: relative path 'customers.csv' escapes the scenario folder" in line


@pytest.mark.parametrize("extra", [["check"], ["run", "-o", "unused"]])
def test_unknown_scenario_name(cli, extra):
    result = cli.invoke(app, [extra[0], "no-such-scenario", *extra[1:]])
    line = _single_error_line(result.stderr)
    assert result.exit_code == 1
    assert "no-such-scenario: no such scenario file or bundled scenario (bundled: " in line


def test_scenario_path_is_a_folder(cli, tmp_path):
    result = cli.invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert _single_error_line(result.stderr) == f"error: {tmp_path}: not a file"


def test_unwritable_output_folder(cli, tiny_scenario, tmp_path):
    # Tests run as root here, so permission bits cannot make a folder unwritable; a regular
    # file where a folder should be fails the same way for every user.
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    result = cli.invoke(app, ["simulate", str(tiny_scenario), "-o", str(blocker / "out")])
    line = _single_error_line(result.stderr)
    assert result.exit_code == 1
    assert str(blocker / "out") in line and "cannot write" in line
    assert blocker.read_text() == "x"


def test_disk_full_while_writing_leaves_no_output(cli, tiny_scenario, tmp_path, monkeypatch):
    def no_space(self, path=None, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(xr.Dataset, "to_netcdf", no_space)
    out = tmp_path / "out"
    result = cli.invoke(app, ["simulate", str(tiny_scenario), "-o", str(out)])
    line = _single_error_line(result.stderr)
    assert result.exit_code == 1
    assert "No space left on device" in line and "result.nc" in line
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_disk_full_keeps_the_previous_complete_output(cli, tiny_scenario, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = cli.invoke(app, ["simulate", str(tiny_scenario), "-o", str(out)])
    assert first.exit_code == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def no_space(self, path=None, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(xr.Dataset, "to_netcdf", no_space)
    result = cli.invoke(app, ["simulate", str(tiny_scenario), "-o", str(out)])
    assert result.exit_code == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _gridflex(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scenarios.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )


def test_subprocess_prints_one_line_and_debug_prints_the_traceback(make_scenario, tmp_path):
    bad = make_scenario({"network": {"source": "pandapower:no_such_feeder"}})
    quiet = _gridflex("run", str(bad), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert quiet.returncode == 1
    line = _single_error_line(quiet.stderr)
    assert "no_such_feeder" in line
    assert "Traceback" not in quiet.stderr + quiet.stdout

    loud = _gridflex("--debug", "run", str(bad), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert loud.returncode == 1
    assert "Traceback (most recent call last)" in loud.stderr
    assert "InputError" in loud.stderr
    assert not (tmp_path / "out").exists()


def test_malformed_toml_in_a_subprocess(make_scenario, tmp_path):
    bad = make_scenario(text="[network]\nsource = 'pandapower:cigre_lv'\nname = = 3\n")
    result = _gridflex("check", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    line = _single_error_line(result.stderr)
    assert str(bad) in line and "malformed TOML" in line and "line 3" in line


def test_network_json_never_imports_modules_it_names(make_scenario, tmp_path):
    # 'this' prints the Zen of Python when imported: a harmless stand-in for a module with
    # import-time side effects (or an attacker's .py next to the scenario, on sys.path).
    nested = '{\\"bus\\": {\\"_module\\": \\"this\\", \\"_class\\": \\"s\\", \\"_object\\": \\"{}\\"}}'
    payload = '{"_module": "pandapower.auxiliary", "_class": "pandapowerNet", "_object": "' + nested + '"}'
    bad = make_scenario({"network": {"source": "file:net.json"}}, files={"net.json": payload})
    result = _gridflex("run", str(bad), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 1
    assert "The Zen of Python" not in result.stdout + result.stderr


def test_customers_row_with_extra_field_is_one_line(make_scenario, cli, tmp_path):
    path = make_scenario(CUSTOMERS_FILE, files={"customers.csv": (
        "customer_id,bus,segment,annual_kwh\n1,12,residential,3200\n2,16,residential,4100,7\n"
    )})
    result = cli.invoke(app, ["run", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    line = _single_error_line(result.stderr)
    assert "customers.csv" in line and "line 3" in line


def test_customer_id_beyond_int64_is_kept_as_text(make_scenario, cli, tmp_path):
    # Issue 19: IDs are text; a number too large for int64 is an ID like any other.
    path = make_scenario(CUSTOMERS_FILE, files={"customers.csv": (
        "customer_id,bus,segment,annual_kwh\n9.3e18,12,residential,3200\n2,16,residential,4100\n"
    )})
    result = cli.invoke(app, ["customers", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    written = pd.read_csv(tmp_path / "out" / "customers.csv", dtype={"customer_id": str})
    assert list(written["customer_id"]) == ["9.3e18", "2"]
