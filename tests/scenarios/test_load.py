"""Scenario loading: bundled files validate, bad files fail with the field named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scenarios.errors import InputError
from scenarios.load import (
    bundled_scenarios,
    load_scenario,
    resolve_input_path,
    scenario_hash,
)

MINIMAL = """
name = "minimal"
[network]
source = "pandapower:cigre_lv"
[time]
start = 2016-01-11
days = 2
[offers]
current_tariff = "flat"
[[offers.tariffs]]
name = "flat"
kind = "flat"
price_eur_per_kwh = 0.3
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_at_least_three_bundled_scenarios_validate():
    library = bundled_scenarios()
    assert len(library) >= 3
    sources = {load_scenario(p).network.source for p in library.values()}
    assert "pandapower:cigre_lv" in sources
    assert any(s.startswith("simbench:1-LV") for s in sources)
    assert any(s.startswith("simbench:1-MV") for s in sources)


def test_bundled_scenario_by_name():
    assert load_scenario("cigre_lv_winter").network.source == "pandapower:cigre_lv"


def test_minimal_scenario_gets_defaults(tmp_path):
    s = load_scenario(write(tmp_path, MINIMAL))
    assert s.customers.count == 200 and s.time.step_min == 15
    assert s.base_dir == tmp_path.resolve()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (("days = 2", "days = 0"), "time.days"),
        (("days = 2", "dayz = 2"), "time.dayz"),
        (("price_eur_per_kwh = 0.3", "price_eur_per_kwh = -0.3"), "offers.tariffs[0].price_eur_per_kwh"),
        (('source = "pandapower:cigre_lv"', 'source = "cigre_lv"'), "network.source"),
        (('current_tariff = "flat"', 'current_tariff = "tou"'), "offers"),
        (("start = 2016-01-11", 'start = "yesterday"'), "time.start"),
    ],
)
def test_bad_field_is_named(tmp_path, edit, field):
    with pytest.raises(InputError) as caught:
        load_scenario(write(tmp_path, MINIMAL.replace(*edit)))
    message = str(caught.value)
    assert f": {field}" in message or f" {field}:" in message, message
    assert "\n" not in message


def test_tou_gap_and_overlap_are_named(tmp_path):
    tou = MINIMAL + """
[[offers.tariffs]]
name = "tou"
kind = "tou"
periods = [
  { name = "a", start_h = 0, end_h = 8, price_eur_per_kwh = 0.2 },
  { name = "b", start_h = 9, end_h = 24, price_eur_per_kwh = 0.4 },
]
"""
    with pytest.raises(InputError, match=r"offers\.tariffs\[1\].*gap from 8 h to 9 h"):
        load_scenario(write(tmp_path, tou))
    overlap = tou.replace("start_h = 9", "start_h = 7")
    with pytest.raises(InputError, match=r"overlaps"):
        load_scenario(write(tmp_path, overlap))


def test_malformed_toml_names_the_file(tmp_path):
    path = write(tmp_path, MINIMAL + "\n[time\n")
    with pytest.raises(InputError, match="malformed TOML"):
        load_scenario(path)


def test_relative_path_may_not_escape(tmp_path):
    (tmp_path / "inner").mkdir()
    secret = tmp_path / "secret.csv"
    secret.write_text("x")
    s = load_scenario(write(tmp_path / "inner", MINIMAL))
    with pytest.raises(InputError, match="escapes the scenario folder"):
        resolve_input_path(s, Path("../secret.csv"), "customers.file")
    assert resolve_input_path(s, secret, "customers.file") == secret


def test_hash_changes_with_content(tmp_path):
    a = load_scenario(write(tmp_path, MINIMAL))
    b = load_scenario(write(tmp_path, MINIMAL.replace("days = 2", "days = 3"), "b.toml"))
    assert scenario_hash(a) == scenario_hash(load_scenario(write(tmp_path, MINIMAL, "c.toml")))
    assert scenario_hash(a) != scenario_hash(b)


def test_cli_import_stays_light():
    """`gridflex --help` must not pay for pandapower, numba, pyomo or xarray."""
    code = (
        "import sys, scenarios.cli; heavy = {'pandapower', 'numba', 'pyomo', 'xarray', 'sklearn',"
        " 'simbench', 'matplotlib', 'distributed'}; print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
