"""Load synthesis: the Numba kernel next to its NumPy and pure-Python twins, and the public wrapper.

The twins (``tests/reference/profiles.py``) compute the same numbers (tested to rtol 1e-12 in
``tests/sim/test_kernels.py``); they run on fewer customers and are scaled to the case's
customer count (the work per customer is the same), which the report marks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.registry import case_named

KERNEL = case_named("profiles/kernel")
#: Customers per kernel call: bounds the reused output buffers ([chunk, steps] × 4 float64).
KERNEL_CHUNK = 32  # as `sim.profiles.simulate_aggregate`: a chunk's outputs stay about L3-sized
STEP_MIN = 15
START = "2016-01-04"
SEED = 42


def _time(steps: int) -> pd.DatetimeIndex:
    return pd.date_range(START, periods=steps, freq=f"{STEP_MIN}min")


def _weather(time: pd.DatetimeIndex):
    from scenarios.schema import WeatherConfig
    from sim.weather import build_weather

    return build_weather(WeatherConfig(), time, seed=SEED, base_dir=Path("."))


def _population(customers: int, **shares):
    from tests.sim.population_factory import make_population

    return make_population(customers, seed=SEED, **shares)


def _analytic_drivers(time: pd.DatetimeIndex, classes: int, pad: int):
    """Smooth class shapes and weather for the ``tiny`` size (the gate's own test): the same
    kernel work without reading the SimBench profiles or building synthetic weather, which
    would cost that test more than the kernel it times."""
    hours = (np.arange(-pad, len(time) + pad) * STEP_MIN / 60.0) % 24.0
    shape = 1.0 + 0.6 * np.cos(2 * np.pi * (hours - 19.0) / 24.0)
    base = np.ascontiguousarray(np.tile(shape / shape.mean(), (classes, 1)))
    step_hours = hours[pad:pad + len(time)]
    temperature = 2.0 + 4.0 * np.cos(2 * np.pi * (step_hours - 15.0) / 24.0)
    pv_factor = np.clip(np.cos(2 * np.pi * (step_hours - 13.0) / 24.0), 0.0, None) * 0.7
    return base, temperature, pv_factor


@pytest.fixture(scope="module")
def kernel_inputs(size: str) -> dict:
    """Plain arrays of the kernel call for the ``profiles/kernel`` case at this size."""
    if size not in KERNEL.sizes:
        pytest.skip(f"profiles/kernel has no {size} size")
    from sim import kernels as k
    from sim.calendar import day_index, hour_of_day
    from sim.profiles import customer_parameters

    p = KERNEL.params(size)
    time = _time(p["steps"])
    population = _population(p["customers"])
    weights, params = customer_parameters(population, SEED)
    if size == "tiny":
        pad = int(np.ceil(k.MAX_SHIFT_H / (STEP_MIN / 60.0)))
        base, temperature, pv_factor = _analytic_drivers(time, weights.shape[1], pad)
    else:
        from sim.profiles import padded_base

        weather = _weather(time)
        base, pad = padded_base(time, "DE", STEP_MIN / 60.0)
        temperature = np.ascontiguousarray(weather["temperature_c"].values)
        pv_factor = np.ascontiguousarray(weather["pv_factor"].values)
    return dict(seed=np.uint64(SEED), ids=population["customer"].values.astype(np.int64),
                weights=weights, base=base, pad=pad, temperature=temperature,
                pv_factor=pv_factor, hour=hour_of_day(time), day=day_index(time),
                step_h=STEP_MIN / 60.0, params=params)


def _twin_args(a: dict, customers: int) -> tuple:
    return (int(a["seed"]), a["ids"][:customers], a["weights"][:customers], a["base"], a["pad"],
            a["temperature"], a["pv_factor"], a["hour"], a["day"], a["step_h"],
            a["params"][:customers])


def test_kernel_gridflex(measure, size, kernel_inputs):
    from sim import kernels as k

    a = kernel_inputs
    n, steps = len(a["ids"]), len(a["temperature"])
    buffers = [np.empty((min(KERNEL_CHUNK, n), steps)) for _ in range(4)]

    def run() -> float:
        total = 0.0
        for start in range(0, n, KERNEL_CHUNK):
            stop = min(start + KERNEL_CHUNK, n)
            out = [b[: stop - start] for b in buffers]
            k.simulate_customers(a["seed"], a["ids"][start:stop], a["weights"][start:stop],
                                 a["base"], a["pad"], a["temperature"], a["pv_factor"], a["hour"],
                                 a["day"], a["step_h"], a["params"][start:stop], *out)
            total += float(out[0].sum())  # stream an aggregate, as a year-long study does
        return total

    total = measure(KERNEL, "gridflex", run, units=n * steps, unit="customer-steps")
    assert np.isfinite(total)


@pytest.mark.peer
def test_kernel_numpy_twin(measure, size, kernel_inputs):
    from tests.reference.profiles import simulate_numpy

    a = kernel_inputs
    n, steps = len(a["ids"]), len(a["temperature"])
    twin = KERNEL.params(size)["numpy_customers"]
    args = _twin_args(a, twin)
    measure(KERNEL, "numpy twin", lambda: simulate_numpy(*args), units=n * steps,
            unit="customer-steps", scale=n / twin, peer=True, rounds=3,
            note=f"timed on {twin} customers, scaled")


@pytest.mark.peer
def test_kernel_python_twin(measure, size, kernel_inputs):
    from tests.reference.profiles import simulate_python

    a = kernel_inputs
    n, steps = len(a["ids"]), len(a["temperature"])
    twin = KERNEL.params(size)["python_customers"]
    args = _twin_args(a, twin)
    measure(KERNEL, "pure-Python twin", lambda: simulate_python(*args), units=n * steps,
            unit="customer-steps", scale=n / twin, peer=True, rounds=3,
            note=f"timed on {twin} customers, scaled")


@pytest.mark.cases("profiles", skip=(KERNEL.name,))
def test_simulate_profiles(measure, size, case):
    from sim.profiles import simulate_profiles

    p = case.params(size)
    time = _time(p["steps"])
    weather = _weather(time)
    population = _population(p["customers"], segment=["residential"] * 8 + ["commercial"])
    ds = measure(case, "gridflex",
                 lambda: simulate_profiles(population, weather, seed=SEED, country="DE"),
                 units=p["customers"] * p["steps"], unit="customer-steps")
    assert ds.sizes == {"customer": p["customers"], "time": p["steps"]}
