"""Simulated class loads against the SimBench standard load profiles (issue 4 acceptance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.schema import WeatherConfig
from sim import shapes
from sim.calendar import DAY_TYPE_NAMES, day_types
from sim.profiles import simulate_aggregate, simulate_profiles
from sim.weather import build_weather
from tests.sim.population_factory import make_population, year_index

SHAPE_CORRELATION_MIN = 0.95   # mean daily shape per day type, simulated vs SimBench H0
FULL_LOAD_HOURS_RTOL = 0.10    # mean individual full-load hours vs SimBench class members
HOUSEHOLDS = 1000

NO_DEVICES = dict(ev_share=0.0, heat_pump_share=0.0, ac_share=0.0, pv_share=0.0,
                  electric_heating_share=0.0)


@pytest.fixture(scope="module")
def weather_2016():
    return build_weather(WeatherConfig(), year_index(2016), seed=21, base_dir=Path("."))


@pytest.fixture(scope="module")
def households(weather_2016):
    population = make_population(HOUSEHOLDS, seed=3, **NO_DEVICES)
    return simulate_aggregate(population, weather_2016, seed=8, country="DE")


def test_standard_profiles_come_from_simbench():
    frame = shapes.standard_profiles()
    assert frame.shape[0] == 35_136
    assert frame.index[0] == pd.Timestamp("2016-01-01 00:00")
    assert {"H0-A", "G0-A", "L0-A"} <= set(frame.columns)
    np.testing.assert_allclose(frame.max().to_numpy(), 1.0)
    for segment in shapes.SEGMENT_PROFILES:
        assert len(shapes.segment_members(segment)) >= 3
        assert shapes.class_profile(segment).mean() == pytest.approx(1.0)


@pytest.mark.parametrize("segment", list(shapes.SEGMENT_PROFILES))
def test_base_series_has_unit_mean_over_the_profile_year(segment):
    time = year_index(2016)
    assert shapes.base_series(segment, time, "DE", 0.25).mean() == pytest.approx(1.0, abs=1e-9)
    hourly = shapes.base_series(segment, year_index(2016, 60), "DE", 1.0)
    assert hourly.mean() == pytest.approx(1.0, abs=1e-9)


def test_mean_of_households_reproduces_h0_daily_shape(households):
    mean = households.total_kw.sum(axis=0) / HOUSEHOLDS
    kinds = day_types(households.time, "DE")
    h0 = shapes.class_profile("residential").to_numpy()
    kinds_sb = day_types(shapes.class_profile("residential").index, shapes.PROFILE_COUNTRY)
    for kind, name in enumerate(DAY_TYPE_NAMES):
        simulated = mean[kinds == kind].reshape(-1, 96).mean(axis=0)
        standard = h0[kinds_sb == kind].reshape(-1, 96).mean(axis=0)
        r = np.corrcoef(simulated, standard)[0, 1]
        assert r >= SHAPE_CORRELATION_MIN, f"{name}: r = {r:.3f}"


def _member_full_load_hours(segment: str) -> float:
    frame = shapes.standard_profiles()
    names = [shapes.member_names()[i] for i in shapes.segment_members(segment)]
    return float(np.mean([shapes.full_load_hours(frame[c].to_numpy(), 0.25) for c in names]))


def test_household_full_load_hours(households):
    simulated = float(np.mean(households.energy_kwh / households.peak_kw))
    want = _member_full_load_hours("residential")
    assert abs(simulated / want - 1.0) < FULL_LOAD_HOURS_RTOL, (simulated, want)


@pytest.mark.parametrize("segment", ["commercial", "industrial", "agricultural"])
def test_class_full_load_hours(weather_2016, segment):
    population = make_population(200, seed=4, segment=segment, annual_kwh=40_000.0, **NO_DEVICES)
    load = simulate_aggregate(population, weather_2016, seed=8, country="DE")
    simulated = float(np.mean(load.energy_kwh / load.peak_kw))
    want = _member_full_load_hours(segment)
    assert abs(simulated / want - 1.0) < FULL_LOAD_HOURS_RTOL, (simulated, want)


def test_coincidence_factor_falls_with_household_count(weather_2016):
    population = make_population(HOUSEHOLDS, seed=5, **NO_DEVICES)
    sizes = (1, 10, 100, 1000)
    # Nested groups: customer i belongs to the smallest group size above its position.
    position = np.arange(HOUSEHOLDS)
    groups = np.searchsorted(np.array(sizes), position, side="right")
    load = simulate_aggregate(population, weather_2016, seed=1, country="DE", groups=groups)
    cumulative = np.cumsum(load.total_kw, axis=0)  # row g = first sizes[g] customers
    factors = []
    for g, size in enumerate(sizes):
        factors.append(cumulative[g].max() / load.peak_kw[:size].sum())
    assert factors[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(factors, factors[1:], strict=False)), factors
    assert factors[-1] < 0.45  # large groups: well below the sum of individual peaks


def test_aggregate_equals_full_simulation(weather_2016):
    population = make_population(12, seed=6)
    week = weather_2016.isel(time=slice(0, 96 * 7))
    full = simulate_profiles(population, week, seed=2, country="DE")
    groups = np.arange(12) % 3
    load = simulate_aggregate(population, week, seed=2, country="DE", groups=groups,
                              chunk_customers=5)
    for g in range(3):
        np.testing.assert_allclose(load.total_kw[g], full["p_kw"].values[groups == g].sum(axis=0),
                                   rtol=1e-13, atol=1e-13)
    assert np.array_equal(load.peak_kw, full["p_kw"].values.max(axis=1))
