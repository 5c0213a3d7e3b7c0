"""The public load-simulation wrapper: contract, reproducibility, energy and physical bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.errors import InputError
from scenarios.schema import WeatherConfig
from sim.profiles import simulate_profiles
from sim.weather import build_weather
from tests.sim.population_factory import make_population, year_index

ANNUAL_ENERGY_RTOL_MEAN = 0.02      # mean over customers vs annual_kwh
ANNUAL_ENERGY_RTOL_CUSTOMER = 0.08  # any single customer (noise, spikes, shifts)
EV_ENERGY_RTOL = 0.05


@pytest.fixture(scope="module")
def year_weather():
    return build_weather(WeatherConfig(), year_index(2016), seed=11, base_dir=Path("."))


@pytest.fixture(scope="module")
def year_profiles(year_weather):
    population = make_population(120, seed=1)
    return population, simulate_profiles(population, year_weather, seed=9, country="DE")


def _week_weather(start="2016-02-01", days=7, step_min=15):
    time = pd.date_range(start, periods=days * 24 * 60 // step_min, freq=f"{step_min}min")
    return build_weather(WeatherConfig(), time, seed=3, base_dir=Path("."))


def test_contract_dims_units_and_coords(year_profiles):
    population, ds = year_profiles
    for name, unit in (("p_kw", "kW"), ("q_kvar", "kvar"), ("flexible_kw", "kW"), ("pv_kw", "kW")):
        assert ds[name].dims == ("customer", "time") and ds[name].attrs["units"] == unit
    assert ds.attrs["step_h"] == 0.25
    assert np.array_equal(ds["customer"].values, population["customer"].values)
    assert ds["customer"].dtype == np.int64


def test_same_seed_identical_other_seed_differs():
    population = make_population(30, seed=4)
    weather = _week_weather()
    a = simulate_profiles(population, weather, seed=5, country="DE")
    b = simulate_profiles(population, weather, seed=5, country="DE")
    c = simulate_profiles(population, weather, seed=6, country="DE")
    assert a.identical(b)
    assert not np.array_equal(a["p_kw"].values, c["p_kw"].values)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunking_is_bitwise_invariant(chunk):
    population = make_population(40, seed=8, ev_share=0.5, heat_pump_share=0.5)
    weather = _week_weather()
    whole = simulate_profiles(population, weather, seed=1, country="DE", chunk_customers=1000)
    parts = simulate_profiles(population, weather, seed=1, country="DE", chunk_customers=chunk)
    for name in whole.data_vars:
        assert np.array_equal(whole[name].values, parts[name].values), name


def test_customer_order_does_not_matter():
    population = make_population(20, seed=2)
    weather = _week_weather()
    forward = simulate_profiles(population, weather, seed=1, country="DE")
    reverse = simulate_profiles(population.isel(customer=slice(None, None, -1)), weather, seed=1,
                                country="DE")
    assert np.array_equal(forward["p_kw"].values, reverse["p_kw"].values[::-1])


def test_base_energy_over_a_year_matches_annual_kwh(year_profiles):
    population, ds = year_profiles
    plain = ~(population["has_ev"] | population["has_heat_pump"] | population["has_ac"]
              | population["has_electric_heating"]).values
    gross = (ds["p_kw"] + ds["pv_kw"]).values[plain]
    energy = gross.sum(axis=1) * ds.attrs["step_h"]
    want = population["annual_kwh"].values[plain]
    assert plain.sum() >= 20
    assert abs(energy.mean() / want.mean() - 1.0) < ANNUAL_ENERGY_RTOL_MEAN
    np.testing.assert_allclose(energy, want, rtol=ANNUAL_ENERGY_RTOL_CUSTOMER)


def test_ev_energy_over_a_year(year_weather):
    population = make_population(40, seed=3, ev_share=1.0, heat_pump_share=0.0, ac_share=0.0,
                                 pv_share=0.0, electric_heating_share=0.0)
    ds = simulate_profiles(population, year_weather, seed=2, country="DE")
    ev_kwh = ds["flexible_kw"].sum("time").values * ds.attrs["step_h"]
    want = population["ev_kwh_per_day"].values * 366
    assert abs(ev_kwh.sum() / want.sum() - 1.0) < EV_ENERGY_RTOL


def test_flexible_within_gross_and_pv_zero_at_night(year_profiles, year_weather):
    population, ds = year_profiles
    gross = ds["p_kw"] + ds["pv_kw"]
    assert float(ds["flexible_kw"].min()) >= 0.0
    assert bool((ds["flexible_kw"] <= gross + 1e-12).all())
    dark = year_weather["ghi_w_m2"].values == 0.0
    assert dark.sum() > 10_000
    assert float(np.abs(ds["pv_kw"].values[:, dark]).max()) == 0.0
    night = pd.DatetimeIndex(ds["time"].values).hour.isin([22, 23, 0, 1, 2, 3])
    assert float(ds["pv_kw"].values[:, night].max()) == 0.0
    # PV owners export at noon in summer: net load goes negative.
    assert float(ds["p_kw"].values[population["has_pv"].values].min()) < 0.0
    assert float(ds["q_kvar"].min()) >= 0.0


def test_heat_pumps_use_more_in_winter(year_profiles):
    population, ds = year_profiles
    hp = population["has_heat_pump"].values & ~population["has_electric_heating"].values
    flex = ds["flexible_kw"].values[hp]
    month = pd.DatetimeIndex(ds["time"].values).month
    assert flex[:, month == 1].mean() > 3.0 * flex[:, month == 7].mean()


def test_coarser_steps_keep_energy():
    population = make_population(30, seed=6, ev_share=0.0, heat_pump_share=0.0, ac_share=0.0,
                                 electric_heating_share=0.0, pv_share=0.0)
    fine = simulate_profiles(population, _week_weather(days=28), seed=1, country="DE")
    coarse = simulate_profiles(population, _week_weather(days=28, step_min=60), seed=1, country="DE")
    e_fine = float(fine["p_kw"].sum()) * 0.25
    e_coarse = float(coarse["p_kw"].sum()) * 1.0
    assert abs(e_coarse / e_fine - 1.0) < 0.03


def test_bad_population_raises_input_error():
    weather = _week_weather(days=1)
    population = make_population(3)
    with pytest.raises(InputError, match="segment"):
        simulate_profiles(population.assign(segment=("customer", np.array(["x", "y", "z"]))),
                          weather, seed=0, country="DE")
    with pytest.raises(InputError, match="annual_kwh"):
        simulate_profiles(population.drop_vars("annual_kwh"), weather, seed=0, country="DE")
    with pytest.raises(InputError, match="power_factor"):
        simulate_profiles(population.assign(power_factor=("customer", np.array([0.9, 1.2, 0.9]))),
                          weather, seed=0, country="DE")
    with pytest.raises(InputError, match="country"):
        simulate_profiles(population, weather, seed=0, country="XX")


def test_missing_optional_fields_use_defaults():
    population = make_population(5)[["segment", "annual_kwh"]]
    ds = simulate_profiles(population, _week_weather(days=2), seed=0, country="DE")
    assert float(ds["flexible_kw"].max()) == 0.0 and float(ds["p_kw"].min()) >= 0.0
