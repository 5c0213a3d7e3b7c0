"""Synthetic population: contract fields, placement on the net, realism, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from customers.population import (
    ANNUAL_KWH_MEDIAN,
    UNITS,
    build_population,
    keyed_uniform,
    size_to_network,
)
from sim.dataset import validate
from tests.customers.feeder_case import make_scenario, net

#: Relative tolerance of a segment's sample median annual energy against its target.
MEDIAN_RTOL = 0.08


@pytest.fixture(scope="module")
def large():
    scenario = make_scenario(customers={"count": 4000})
    return scenario, build_population(scenario, net())


def test_contract_fields_dtypes_and_units(large):
    _, ds = large
    assert ds["customer"].dtype == np.int64
    np.testing.assert_array_equal(ds["customer"].values, np.arange(4000))
    for name, units in UNITS.items():
        assert ds[name].dims == ("customer",)
        assert ds[name].attrs["units"] == units
    assert ds["segment"].dtype == np.dtype("<U12")
    assert ds["bus"].dtype == np.int64 and ds["load"].dtype == np.int64
    for flag in ("has_ev", "has_heat_pump", "has_ac", "has_pv", "has_electric_heating"):
        assert ds[flag].dtype == bool
    validate(ds)


def test_every_customer_on_an_in_service_load_at_its_bus(large):
    _, ds = large
    table = net().load
    load = ds["load"].values
    assert np.isin(load, table.index[table.in_service]).all()
    np.testing.assert_array_equal(table.loc[load, "bus"].to_numpy(), ds["bus"].values)
    # Customers are spread in proportion to the elements' rating, each element served.
    counts = np.bincount(load, minlength=len(table))
    share = counts / counts.sum()
    expected = table["p_mw"].to_numpy() / table["p_mw"].sum()
    assert (counts > 0).all()
    np.testing.assert_allclose(share, expected, atol=2.0 / 4000 + 1e-3)


def test_segment_mix_and_energies_are_realistic(large):
    scenario, ds = large
    seg = ds["segment"].values
    mix = scenario.customers.mix
    for name in ANNUAL_KWH_MEDIAN:
        assert abs((seg == name).sum() - getattr(mix, name) * 4000) <= 1
    for name in ("residential", "commercial"):
        median = np.median(ds["annual_kwh"].values[seg == name])
        assert median == pytest.approx(ANNUAL_KWH_MEDIAN[name], rel=MEDIAN_RTOL)
    res = seg == "residential"
    assert not ds["has_ev"].values[~res].any()
    assert not ds["has_heat_pump"].values[~res].any()
    assert not (ds["has_heat_pump"].values & ds["has_electric_heating"].values).any()
    ev_share = ds["has_ev"].values[res].mean()
    assert ev_share == pytest.approx(scenario.customers.ev_share, abs=0.03)
    assert set(np.unique(ds["ev_charger_kw"].values[ds["has_ev"].values])) <= {3.7, 11.0}
    assert (ds["pv_kwp"].values[~ds["has_pv"].values] == 0).all()
    assert ((ds["power_factor"] > 0.8) & (ds["power_factor"] <= 1)).all()


def test_same_seed_same_population_other_seed_differs():
    scenario = make_scenario()
    a = build_population(scenario, net())
    b = build_population(scenario, net())
    assert a.identical(b)
    c = build_population(make_scenario(seed=8), net())
    assert not np.array_equal(a["annual_kwh"].values, c["annual_kwh"].values)


def test_field_streams_are_independent():
    # Changing one share must not reshuffle the unrelated fields.
    a = build_population(make_scenario(), net())
    b = build_population(make_scenario(customers={"count": 120, "ev_share": 0.9}), net())
    np.testing.assert_array_equal(a["annual_kwh"].values, b["annual_kwh"].values)
    np.testing.assert_array_equal(a["has_pv"].values, b["has_pv"].values)
    assert b["has_ev"].values.sum() > a["has_ev"].values.sum()


def test_keyed_uniform_depends_only_on_the_key():
    ids = np.arange(1000)
    full = keyed_uniform(3, "x", ids, 2)
    np.testing.assert_array_equal(full[500:], keyed_uniform(3, "x", ids[500:], 2))
    assert 0 < full.min() and full.max() < 1
    assert abs(full.mean() - 0.5) < 0.03
    assert not np.array_equal(full, keyed_uniform(3, "x", ids, 3))


def test_size_to_network_matches_each_elements_rating():
    from tests.customers.feeder_case import feeder_case

    _, population, profiles, _ = feeder_case()
    grid = net()
    scale = size_to_network(population, profiles, grid)
    assert scale.attrs["units"] == "1"
    scaled = profiles["p_kw"].values * scale.values[:, None]
    for element in np.unique(population["load"].values):
        members = population["load"].values == element
        peak = scaled[members].sum(axis=0).max()
        assert peak == pytest.approx(1000.0 * grid.load.at[element, "p_mw"], rel=1e-9)
