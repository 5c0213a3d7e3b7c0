"""Calibration recovers the parameters the simulator was given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from customers.calibration import CalibrationConfig, calibrate
from scenarios.errors import InputError
from scenarios.schema import WeatherConfig
from sim.profiles import simulate_profiles
from sim.weather import build_weather
from tests.sim.population_factory import make_population, year_index

ENERGY_RTOL = 0.08           # vs the annual_kwh parameter (the draw itself varies, see test_profiles)
ENERGY_RTOL_REALIZED = 0.02  # vs the energy the simulator actually produced, no heating
ENERGY_RTOL_HEATED = 0.10    # heating and base load share the winter evenings
HEAT_RTOL = 0.05             # kW/K of the heat pumps
WEIGHT_ATOL = 0.25           # residential share of the shape (vs commercial)
NOISE_ATOL = 0.06            # noise sd, customers without heating
N = 24


@pytest.fixture(scope="module")
def case():
    population = make_population(N, seed=7, ev_share=0.0, ac_share=0.0, pv_share=0.0,
                                 heat_pump_share=0.4, electric_heating_share=0.0)
    rng = np.random.default_rng(1)
    share = rng.uniform(0.0, 1.0, N)
    population = population.assign(
        shape_weight_residential=("customer", share),
        shape_weight_commercial=("customer", 1.0 - share),
        noise_sd=("customer", rng.uniform(0.05, 0.4, N)),
        annual_kwh=("customer", rng.uniform(2000.0, 8000.0, N)),
    )
    time = year_index(2016)
    weather = build_weather(WeatherConfig(), time, seed=2, base_dir=Path("."))
    ds = simulate_profiles(population, weather, seed=3, country="DE")
    meter = pd.DataFrame({
        "customer_id": np.repeat(ds["customer"].values, len(time)),
        "timestamp": np.tile(time.values, N),
        "kwh": (ds["p_kw"].values * 0.25).ravel(),
    })
    config = CalibrationConfig(shape_segments=("residential", "commercial"))
    fitted = calibrate(meter, weather["temperature_c"].to_series(), config, bus=3)
    truth = population.to_dataframe()
    truth["realized_kwh_per_year"] = ds["p_kw"].mean("time").values * 8760.0
    # IDs come back as text, exactly as the meter file would spell them.
    assert fitted["customer_id"].tolist() == sorted(map(str, ds["customer"].values))
    return truth, fitted.set_index(fitted["customer_id"].astype(np.int64))


def test_heating_is_detected_and_sized(case):
    truth, fitted = case
    assert (fitted["has_heat_pump"] == truth["has_heat_pump"]).all()
    hp = truth["has_heat_pump"]
    np.testing.assert_allclose(fitted.loc[hp, "heat_kw_per_degc"], truth.loc[hp, "heat_kw_per_degc"],
                               rtol=HEAT_RTOL)
    assert (fitted.loc[~hp, "heat_kw_per_degc"] < 0.02).all()


def test_annual_energy(case):
    truth, fitted = case
    hp = truth["has_heat_pump"]
    np.testing.assert_allclose(fitted.loc[~hp, "annual_kwh"], truth.loc[~hp, "annual_kwh"],
                               rtol=ENERGY_RTOL)
    np.testing.assert_allclose(fitted.loc[~hp, "annual_kwh"],
                               truth.loc[~hp, "realized_kwh_per_year"], rtol=ENERGY_RTOL_REALIZED)
    np.testing.assert_allclose(fitted.loc[hp, "annual_kwh"], truth.loc[hp, "annual_kwh"],
                               rtol=ENERGY_RTOL_HEATED)


def test_shape_weights_and_noise(case):
    truth, fitted = case
    np.testing.assert_allclose(fitted["shape_weight_residential"], truth["shape_weight_residential"],
                               atol=WEIGHT_ATOL)
    r = np.corrcoef(fitted["shape_weight_residential"], truth["shape_weight_residential"])[0, 1]
    assert r > 0.9
    hp = truth["has_heat_pump"]
    np.testing.assert_allclose(fitted.loc[~hp, "noise_sd"], truth.loc[~hp, "noise_sd"],
                               atol=NOISE_ATOL)
    assert (fitted["bus"] == 3).all()


def test_bad_input():
    with pytest.raises(InputError, match="missing column"):
        calibrate(pd.DataFrame({"customer_id": [1], "kwh": [1.0]}))
    with pytest.raises(InputError, match="shape_segments"):
        calibrate(pd.DataFrame({"customer_id": [1, 1], "timestamp": ["2016-01-01 00:00", "2016-01-01 00:15"],
                                "kwh": [1.0, 1.0]}), config=CalibrationConfig(shape_segments=("x",)))


def test_customer_without_enough_data_keeps_a_complete_row():
    time = pd.date_range("2016-02-01", periods=96 * 3, freq="15min")
    rng = np.random.default_rng(0)
    good = pd.DataFrame({"customer_id": 1, "timestamp": time, "kwh": rng.uniform(0.05, 0.2, len(time))})
    sparse = pd.DataFrame({"customer_id": 2, "timestamp": time[:5], "kwh": 0.1})
    fitted = calibrate(pd.concat([good, sparse]), bus={"1": 4, "2": 5}).set_index("customer_id")
    assert np.isfinite(fitted.loc["1", "annual_kwh"]) and np.isnan(fitted.loc["2", "annual_kwh"])
    row = fitted.loc["2"].drop(["annual_kwh", "fit_r2"])
    assert row.notna().all() and fitted.loc["2", "bus"] == 5


def test_hourly_and_quarter_hourly_customers_in_one_frame():
    """Issue 20: an hourly meter beside 15-min ones keeps its own energy (was 4x)."""
    time15 = pd.date_range("2016-02-01", periods=96 * 14, freq="15min")
    time60 = pd.date_range("2016-02-01", periods=24 * 14, freq="60min")
    rng = np.random.default_rng(1)
    quarter = pd.DataFrame({"customer_id": "Q", "timestamp": time15,
                            "kwh": rng.uniform(0.05, 0.2, len(time15))})
    hourly = pd.DataFrame({"customer_id": "H", "timestamp": time60,
                           "kwh": rng.uniform(0.8, 1.4, len(time60))})
    fitted = calibrate(pd.concat([quarter, hourly])).set_index("customer_id")
    for cid, part, step_h in (("Q", quarter, 0.25), ("H", hourly, 1.0)):
        mean_kw = part["kwh"].mean() / step_h
        # annual_kwh is the fitted base level; with no heating it is the mean load x 8760 h.
        assert fitted.loc[cid, "annual_kwh"] == pytest.approx(mean_kw * 8760.0, rel=0.05), cid
