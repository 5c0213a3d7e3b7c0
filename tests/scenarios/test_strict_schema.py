"""Strict scenario types and tier policies merged with the defaults (issue 20, items 10, 11).

Wrong types used to pass: ``days = "2"`` and ``days = true`` were read as 2 and 1. Strict
types refuse them (the cases are in `test_bad_input`); what a planner naturally writes — an
integer where a float is expected, a TOML date — still loads. A lone ``[credit.policies.A]``
table used to fail with "missing B, C, D".
"""

from __future__ import annotations

import datetime as dt

import pytest

from scenarios.cli import app
from scenarios.load import bundled_scenarios, load_scenario
from scenarios.schema import _default_policies


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_bundled_scenarios_load_strictly(name):
    assert load_scenario(name).name


def test_integers_where_floats_are_expected_and_toml_dates_load(make_scenario):
    scenario = load_scenario(make_scenario({
        "time": {"start": dt.date(2016, 3, 1)},
        "limits": {"budget_eur": 5000, "trafo_loading_max_pct": 120},
        "offers": {"tariffs": [{"name": "flat", "kind": "flat", "price_eur_per_kwh": 1}]},
        "credit": {"tier_min_scores": [700, 650, 600]},
    }, drop=("offers.curtailment",)))
    assert scenario.limits.budget_eur == 5000.0 and isinstance(scenario.limits.budget_eur, float)
    assert scenario.time.start == dt.date(2016, 3, 1)
    assert scenario.credit.tier_min_scores == (700.0, 650.0, 600.0)


def test_iso_date_string_still_loads(make_scenario):
    scenario = load_scenario(make_scenario({"time": {"start": "2016-03-01"}}))
    assert scenario.time.start == dt.date(2016, 3, 1)


@pytest.mark.parametrize("value, expect", [
    ("2", "time.days: Input should be a valid integer"),
    (True, "time.days: Input should be a valid integer"),
    (2.5, "time.days: Input should be a valid integer"),
])
def test_wrong_types_name_the_field(make_scenario, cli, value, expect):
    path = make_scenario({"time": {"days": value}})
    result = cli.invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {path}: {expect}"


def test_a_lone_tier_table_merges_with_the_default_tiers(make_scenario):
    scenario = load_scenario(make_scenario({"credit": {"policies": {"A": {"incentive_cap_eur": 80.0}}}}))
    defaults = _default_policies()
    policies = scenario.credit.policies
    assert policies["A"].incentive_cap_eur == 80.0
    assert policies["A"].deposit_eur == defaults["A"].deposit_eur
    for tier in "BCD":
        assert policies[tier] == defaults[tier]


def test_a_tier_table_keeps_the_fields_it_does_not_write(make_scenario):
    scenario = load_scenario(make_scenario({"credit": {"policies": {"D": {"deposit_eur": 200.0}}}}))
    d = scenario.credit.policies["D"]
    assert d.deposit_eur == 200.0
    assert d.incentive_cap_eur == 0.0 and d.pay_for_performance_only and d.prepayment_suggested


@pytest.mark.parametrize("start", [dt.date(1900, 1, 1), dt.date(2200, 12, 31)])
def test_the_first_and_last_supported_years_run(make_scenario, cli, tmp_path, start):
    """Item 5: out-of-range starts are refused by `check` (test_bad_input); the range runs."""
    path = make_scenario({"time": {"start": start}})
    result = cli.invoke(app, ["simulate", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr


def test_a_midnight_date_time_is_a_date_and_another_time_is_refused(make_scenario, cli):
    scenario = load_scenario(make_scenario({"time": {"start": dt.datetime(2016, 3, 1)}}))
    assert scenario.time.start == dt.date(2016, 3, 1)
    path = make_scenario({"time": {"start": dt.datetime(2016, 3, 1, 10, 0)}})
    result = cli.invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {path}: time.start: Input should be a valid date"
