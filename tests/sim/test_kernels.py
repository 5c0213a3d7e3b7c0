"""Numba load kernels against their slow twins, and the counter-based random stream."""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest

from scenarios.schema import WeatherConfig
from sim import kernels as k
from sim.calendar import day_index, hour_of_day
from sim.profiles import customer_parameters, padded_base
from sim.weather import build_weather
from tests.reference import profiles as ref
from tests.sim.population_factory import make_population

TWIN_RTOL = 1e-12  # transcendental functions may differ by an ulp between LLVM and CPython
TWIN_ATOL = 1e-12  # [kW] for values that are exactly zero in one and ~1e-17 in the other


def _inputs(n: int, days: int, start: str = "2016-01-25", step_min: int = 15, **shares):
    population = make_population(n, seed=5, **shares)
    time = pd.date_range(start, periods=days * 24 * 60 // step_min, freq=f"{step_min}min")
    weather = build_weather(WeatherConfig(), time, seed=2, base_dir=Path("."))
    step_h = step_min / 60.0
    weights, params = customer_parameters(population)
    base, pad = padded_base(time, "DE", step_h)
    ids = population["customer"].values.astype(np.int64)
    return dict(seed=np.uint64(42), ids=ids, weights=weights, base=base, pad=pad,
                temperature=weather["temperature_c"].values, pv_factor=weather["pv_factor"].values,
                hour=hour_of_day(time), day=day_index(time), step_h=step_h, params=params)


def _run_kernel(a):
    n, t = len(a["ids"]), len(a["temperature"])
    out = [np.empty((n, t)) for _ in range(4)]
    k.simulate_customers(a["seed"], a["ids"], a["weights"], a["base"], a["pad"], a["temperature"],
                         a["pv_factor"], a["hour"], a["day"], a["step_h"], a["params"], *out)
    return out


def _args(a):
    return (a["seed"], a["ids"], a["weights"], a["base"], a["pad"], a["temperature"],
            a["pv_factor"], a["hour"], a["day"], a["step_h"], a["params"])


def test_splitmix64_matches_published_sequence():
    # SplitMix64 seeded with 0: first outputs (Vigna's reference implementation).
    assert int(k.mix64(k.GOLDEN)) == 0xE220A8397B1DCDAF
    assert int(k.mix64(np.uint64(2 * int(k.GOLDEN) % 2**64))) == 0x6E789E6AA1B965F4
    assert ref.mix64(int(k.GOLDEN)) == 0xE220A8397B1DCDAF


def test_random_stream_matches_python_and_is_standardised():
    key = int(k.stream_key(np.uint64(7), 123, k.STREAM_STEP_NOISE))
    assert key == ref.stream_key(7, 123, k.STREAM_STEP_NOISE)
    z = np.array([k.normal(np.uint64(key), i) for i in range(20_000)])
    u = np.array([k.uniform(np.uint64(key), i) for i in range(20_000)])
    assert z[17] == ref.normal(key, 17) and u[3] == ref.uniform(key, 3)
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1.0) < 0.03   # 4 se
    assert abs(u.mean() - 0.5) < 0.01 and 0.0 <= u.min() and u.max() < 1.0


@pytest.mark.parametrize("step_min", [15, 60])
def test_kernel_matches_pure_python_twin(step_min):
    a = _inputs(3, 9, start="2016-03-22", step_min=step_min, ev_share=1.0, heat_pump_share=0.7,
                ac_share=1.0, pv_share=1.0, electric_heating_share=1.0)
    got = _run_kernel(a)
    want = ref.simulate_python(*_args(a))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=TWIN_RTOL, atol=TWIN_ATOL)


def test_kernel_matches_numpy_twin_in_summer():
    a = _inputs(12, 6, start="2016-07-20", ev_share=0.6, heat_pump_share=0.5, ac_share=0.8,
                pv_share=0.8, electric_heating_share=0.3)
    got = _run_kernel(a)
    want = ref.simulate_numpy(*_args(a))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=TWIN_RTOL, atol=TWIN_ATOL)
    assert got[2].max() > 0.0 and got[3].max() > 0.0  # devices and PV were exercised


def test_threads_one_and_two_identical():
    a = _inputs(16, 4, ev_share=0.5, heat_pump_share=0.5)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _run_kernel(a)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = _run_kernel(a)
    finally:
        numba.set_num_threads(before)
    for x, y in zip(one, two, strict=True):
        assert np.array_equal(x, y)


def test_customer_result_independent_of_its_neighbours():
    a = _inputs(6, 3)
    full = _run_kernel(a)
    sub = dict(a, ids=a["ids"][3:4], weights=a["weights"][3:4], params=a["params"][3:4])
    alone = _run_kernel(sub)
    assert np.array_equal(full[0][3], alone[0][0])


def test_group_sums_bitwise_equal_numpy_add_at_for_any_thread_count():
    rng = np.random.default_rng(3)
    rows = rng.lognormal(size=(37, 2 * k.BLOCK_STEPS + 5)) * 10.0 ** rng.integers(-3, 4, (37, 1))
    groups = rng.integers(0, 4, 37)
    want = np.zeros((4, rows.shape[1]))
    ref.add_rows_by_group(groups, rows, want)
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            got = np.zeros_like(want)
            k.add_rows_by_group(groups, rows, got)
            assert np.array_equal(got, want)
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize(("start", "step_min"), [("2016-10-28 14:30", 15),
                                                  ("2016-03-25 13:00", 60),
                                                  ("2016-03-26 23:30", 30)])
def test_ev_and_water_heater_match_twin_over_local_dst_changes_and_partial_days(start, step_min):
    # The kernel runs only EV charging steps and water-heater reheating steps, found from the
    # arrival and draw times; the twin steps through every step. A window that starts in the
    # afternoon and coarser steps must not move them, nor a clock with a DST change (an hour
    # repeated in October, skipped in March: the scenario grid is naive local time, but the
    # kernel takes any clock).
    a = _inputs(40, 4, start=start, step_min=step_min, ev_share=1.0, heat_pump_share=0.0,
                ac_share=0.0, pv_share=0.0, electric_heating_share=1.0)
    assert (a["params"][:, k.WATER_KW] > 0).all()
    clock = pd.date_range(start, periods=len(a["hour"]), freq=f"{step_min}min",
                          tz="Europe/Berlin")
    a["hour"], a["day"] = hour_of_day(clock), day_index(clock.tz_localize(None))
    assert len(np.unique(np.diff(a["hour"]))) > 2  # the clock jumps at midnight and at DST
    flex = _run_kernel(a)[2]
    want = ref.simulate_python(*_args(a))[2]
    np.testing.assert_allclose(flex, want, rtol=TWIN_RTOL, atol=TWIN_ATOL)
    assert (flex > 0).any(axis=1).mean() > 0.5  # most customers charged at least once


def test_kernel_matches_twin_across_block_boundaries_and_a_dst_change():
    # Longer than one block of `simulate_customer`, over the spring DST change, every device.
    a = _inputs(2, 12, start="2016-03-20", ev_share=1.0, heat_pump_share=0.5, ac_share=1.0,
                pv_share=1.0, electric_heating_share=1.0)
    assert len(a["temperature"]) > k.BLOCK_STEPS
    got = _run_kernel(a)
    want = ref.simulate_python(*_args(a))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=TWIN_RTOL, atol=TWIN_ATOL)


@pytest.mark.parametrize(("temperature_c", "cop"), [
    (7.0, 0.4 * 308.15 / 28.0),    # 4.4021: the rating point
    (-5.0, 0.4 * 308.15 / 40.0),   # 3.0815
    (32.0, 6.0),                   # lift 3 K → 5 K floor → 24.65, clipped to 6
    (-60.0, 1.5),                  # 0.4·308.15/95 = 1.297, clipped to 1.5
])
def test_heat_pump_cop_by_hand(temperature_c, cop):
    """COP = 0.4 · (35 + 273.15) / max(35 − T, 5) clipped to [1.5, 6] (Carnot fraction 0.4)."""
    assert k.heat_pump_cop(temperature_c) == pytest.approx(cop, rel=1e-14)
    assert ref.heat_pump_cop(temperature_c) == pytest.approx(cop, rel=1e-14)
