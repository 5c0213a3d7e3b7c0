"""Per-customer stochastic load profiles: the public wrapper around `sim.kernels`.

A customer's gross load = base (appliance) load + flexible device load, where

- base = annual base energy / 8760 × (calendar-correct class shape from SimBench standard load
  profiles, `sim.shapes`, time-shifted and contrast-scaled per customer) × AR(1) noise + appliance
  spikes (the spikes' probability follows the shape, so their mean does too);
- flexible = heat pump or direct electric heating (lagged outdoor temperature, thermostat
  programme, COP, compressor cycling) + air conditioning + EV home charging (arrival, energy,
  departure per day) + water heater (morning/evening draws).

Net load ``p_kw = gross - pv_kw``; reactive load ``q_kvar = gross · tan φ``.

Population fields used (see ``docs/contracts.md``) and optional extras, with their defaults:

- ``annual_kwh`` — yearly *base* energy, without the devices below [kWh];
- ``heat_kw_per_degc`` — electric heating load per K of heating degree at 7 °C outdoor (heat
  pump) or at any temperature (resistive) [kW/K], used if ``has_heat_pump`` or
  ``has_electric_heating``;
- ``ev_charger_kw``, ``ev_kwh_per_day`` (if ``has_ev``), ``pv_kwp`` (if ``has_pv``),
  ``power_factor``;
- optional ``ac_kw_per_degc`` [kW/K] (default 0.3·max(1, annual_kwh/3500) if ``has_ac``),
  ``has_water_heater`` (default = ``has_electric_heating``), ``water_heater_kw`` (3 kW),
  ``water_kwh_per_day`` (2.5 kWh/d), ``noise_sd``, ``spike_share``, ``spike_size`` (per-segment
  defaults, `SEGMENT_DIVERSITY`), ``shape_weight_<segment>`` (default: one-hot of ``segment``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from scenarios.errors import InputError
from sim import kernels as k
from sim.calendar import day_index, hour_of_day
from sim.dataset import validate
from sim.shapes import (
    SEGMENT_INDEX,
    SEGMENT_PROFILES,
    member_base_series,
    member_names,
    segment_members,
)

DEFAULT_CHUNK = 1024

# Diversity per segment: (noise sd, spike share of base energy, mean spike height in multiples of
# the mean base load), checked in tests/sim/test_shapes.py.
# Tuned by a grid search (noise sd × spike share × spike size) on 150 customers per segment over
# 2016 so that the mean individual full-load hours match the mean of the SimBench members'
# (residential 1,658 h, commercial 3,078 h, industrial 4,791 h, agricultural 2,720 h).
SEGMENT_DIVERSITY: dict[str, tuple[float, float, float]] = {
    "residential": (0.10, 0.30, 1.5),
    "commercial": (0.10, 0.10, 0.3),
    "industrial": (0.05, 0.02, 0.2),
    "agricultural": (0.20, 0.05, 0.3),
}
REQUIRED_FIELDS = ("segment", "annual_kwh")


def _field(population: xr.Dataset, name: str, default: np.ndarray | float, dtype) -> np.ndarray:
    n = population.sizes["customer"]
    if name in population:
        values = np.asarray(population[name].values).astype(dtype)
    else:
        values = np.broadcast_to(np.asarray(default, dtype=dtype), (n,)).copy()
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise InputError(f"population.{name}: not a finite number for customer "
                         f"{int(population['customer'].values[bad])}")
    return values


def draw_members(ids: np.ndarray, seg_idx: np.ndarray, seed: int) -> np.ndarray:
    """The SimBench member profile each customer follows, uniform within its segment [int64].

    Keyed by (seed, customer id) like every other draw, so it does not depend on the population's
    order or size.
    """
    segments = list(SEGMENT_PROFILES)
    seed_u = np.uint64(seed % 2**64)
    out = np.empty(len(ids), dtype=np.int64)
    for i, (cid, s) in enumerate(zip(ids, seg_idx, strict=True)):
        members = segment_members(segments[s])
        u = k.uniform(np.uint64(k.stream_key(seed_u, np.int64(cid), k.STREAM_MEMBER)), 0)
        out[i] = members[min(int(u * len(members)), len(members) - 1)]
    return out


def customer_parameters(
    population: xr.Dataset, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Kernel inputs from a population: shape weights ``[n, member]`` and params ``[n, P]``.

    Without ``shape_weight_<segment>`` fields every customer follows one member profile of its
    segment (`draw_members`); with them, a customer's shape is the weighted mix of the segments'
    class profiles (each spread evenly over that segment's members).
    """
    for name in REQUIRED_FIELDS:
        if name not in population:
            raise InputError(f"population: missing field '{name}'")
    n = population.sizes["customer"]
    segment = np.asarray(population["segment"].values).astype(str)
    unknown = sorted(set(segment) - set(SEGMENT_INDEX))
    if unknown:
        raise InputError(f"population.segment: unknown segment(s) {', '.join(unknown)}")
    seg_idx = np.array([SEGMENT_INDEX[s] for s in segment], dtype=np.int64)
    annual = _field(population, "annual_kwh", 0.0, np.float64)
    if np.any(annual < 0):
        raise InputError("population.annual_kwh: must be ≥ 0")

    def flag(name: str) -> np.ndarray:
        return _field(population, name, False, bool)

    has_hp, has_eh, has_ac = flag("has_heat_pump"), flag("has_electric_heating"), flag("has_ac")
    has_ev, has_pv = flag("has_ev"), flag("has_pv")
    has_water = _field(population, "has_water_heater", has_eh, bool)

    weights = np.zeros((n, len(member_names())))
    explicit = [f"shape_weight_{s}" for s in SEGMENT_PROFILES]
    if any(name in population for name in explicit):
        class_weights = np.stack([_field(population, name, 0.0, np.float64) for name in explicit],
                                 axis=1)
        total = class_weights.sum(axis=1, keepdims=True)
        if np.any(total <= 0) or np.any(class_weights < 0):
            raise InputError("population.shape_weight_*: weights must be ≥ 0 with a positive sum")
        class_weights /= total
        for j, segment in enumerate(SEGMENT_PROFILES):
            members = segment_members(segment)
            weights[:, members] += class_weights[:, j : j + 1] / len(members)
    else:
        ids = population["customer"].values.astype(np.int64)
        weights[np.arange(n), draw_members(ids, seg_idx, seed)] = 1.0

    diversity = np.array([SEGMENT_DIVERSITY[s] for s in SEGMENT_PROFILES])[seg_idx]
    params = np.zeros((n, k.PARAM_COUNT))
    params[:, k.MEAN_KW] = annual / 8760.0
    heat = _field(population, "heat_kw_per_degc", 0.0, np.float64)
    params[:, k.HEAT_KW_PER_K] = np.where(has_hp | has_eh, np.maximum(heat, 0.0), 0.0)
    params[:, k.HEAT_PUMP] = has_hp.astype(np.float64)
    ac_default = 0.3 * np.maximum(1.0, annual / 3500.0)
    params[:, k.COOL_KW_PER_K] = np.where(
        has_ac, np.maximum(_field(population, "ac_kw_per_degc", ac_default, np.float64), 0.0), 0.0)
    params[:, k.EV_KW] = np.where(has_ev, np.maximum(_field(population, "ev_charger_kw", 11.0, np.float64), 0.0), 0.0)
    params[:, k.EV_KWH_PER_DAY] = np.maximum(_field(population, "ev_kwh_per_day", 8.0, np.float64), 0.0)
    params[:, k.WATER_KW] = np.where(has_water, _field(population, "water_heater_kw", 3.0, np.float64), 0.0)
    params[:, k.WATER_KWH_PER_DAY] = _field(population, "water_kwh_per_day", 2.5, np.float64)
    params[:, k.PV_KWP] = np.where(has_pv, np.maximum(_field(population, "pv_kwp", 0.0, np.float64), 0.0), 0.0)
    pf = _field(population, "power_factor", 0.95, np.float64)
    if np.any((pf <= 0) | (pf > 1)):
        raise InputError("population.power_factor: must be in (0, 1]")
    params[:, k.TAN_PHI] = np.tan(np.arccos(pf))
    params[:, k.NOISE_SD] = _field(population, "noise_sd", diversity[:, 0], np.float64)
    params[:, k.SPIKE_SHARE] = np.clip(_field(population, "spike_share", diversity[:, 1], np.float64), 0.0, 0.9)
    params[:, k.SPIKE_SIZE] = np.maximum(_field(population, "spike_size", diversity[:, 2], np.float64), 0.1)
    return weights, params


def padded_base(time: pd.DatetimeIndex, country: str, step_h: float) -> tuple[np.ndarray, int]:
    """Member base shapes on ``time`` extended by the largest time shift each side.

    Returns ``([member, pad + T + pad] shapes, pad)``.
    """
    pad = int(np.ceil(k.MAX_SHIFT_H / step_h))
    step = pd.Timedelta(hours=step_h)
    extended = pd.date_range(time[0] - pad * step, periods=len(time) + 2 * pad, freq=step)
    return np.ascontiguousarray(member_base_series(extended, country, step_h)), pad


@dataclass(frozen=True)
class AggregateLoad:
    """Group totals of a simulation that never holds the ``[customer, time]`` arrays."""

    time: pd.DatetimeIndex
    step_h: float
    total_kw: np.ndarray       # [group, time] summed net active load [kW]
    flexible_kw: np.ndarray    # [group, time] summed curtailable load [kW]
    energy_kwh: np.ndarray     # [customer] net energy over the window [kWh]
    peak_kw: np.ndarray        # [customer] largest net load of each customer [kW]


def _prepare(population: xr.Dataset, weather: xr.Dataset, seed: int, country: str):
    time = pd.DatetimeIndex(weather["time"].values)
    step_h = float(weather.attrs["step_h"])
    ids = np.asarray(population["customer"].values)
    if ids.dtype.kind not in "iu":
        raise InputError("population.customer: ids must be integers")
    days = day_index(time)
    if np.any(np.diff(days) < 0):
        # The kernel keeps the per-day draws in a table indexed by day − first day.
        raise InputError("weather.time: steps must be in increasing order")
    weights, params = customer_parameters(population, seed)
    base, pad = padded_base(time, country, step_h)
    drivers = (
        np.ascontiguousarray(weather["temperature_c"].values, dtype=np.float64),
        np.ascontiguousarray(weather["pv_factor"].values, dtype=np.float64),
        hour_of_day(time),
        days,
        step_h,
    )
    return time, step_h, ids.astype(np.int64), weights, params, base, pad, drivers


def simulate_aggregate(
    population: xr.Dataset,
    weather: xr.Dataset,
    *,
    seed: int,
    country: str,
    groups: np.ndarray | None = None,
    chunk_customers: int = 32,
) -> AggregateLoad:
    """Simulate chunk by chunk and keep only group sums and per-customer energy and peak.

    Memory is bounded by ``chunk_customers × steps`` whatever the population size; numbers are
    bitwise those of `simulate_profiles` (same kernel, same streams). The default chunk keeps a
    year of a chunk's four outputs (32 × 35,040 × 4 × 8 B = 36 MB) about L3-sized: measured
    ~20 % faster than 256 customers per chunk, whose outputs go through main memory.

    Parameters
    ----------
    groups
        ``[customer]`` group index in ``0..G-1`` (e.g. the net load each customer feeds); one
        group of everybody when omitted.
    """
    time, step_h, ids, weights, params, base, pad, drivers = _prepare(population, weather, seed,
                                                                      country)
    n, n_steps = len(ids), len(time)
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    groups = np.ascontiguousarray(groups)
    if groups.shape != (n,) or (n and groups.min() < 0):
        raise ValueError("groups must give a non-negative group index per customer")
    n_groups = int(groups.max()) + 1 if n else 1
    total = np.zeros((n_groups, n_steps))
    flexible = np.zeros((n_groups, n_steps))
    energy = np.empty(n)
    peak = np.empty(n)
    size = max(1, min(chunk_customers, n))
    buffers = [np.empty((size, n_steps)) for _ in range(4)]
    seed_u = np.uint64(seed % 2**64)
    for start in range(0, n, size):
        stop = min(start + size, n)
        out = [b[: stop - start] for b in buffers]
        k.simulate_customers(seed_u, ids[start:stop], weights[start:stop], base, pad,
                             *drivers[:4], step_h, params[start:stop], *out)
        k.add_rows_by_group(groups[start:stop], out[0], total)
        k.add_rows_by_group(groups[start:stop], out[2], flexible)
        energy[start:stop] = out[0].sum(axis=1) * step_h
        peak[start:stop] = out[0].max(axis=1)
    return AggregateLoad(time, step_h, total, flexible, energy, peak)


def simulate_profiles(
    population: xr.Dataset,
    weather: xr.Dataset,
    *,
    seed: int,
    country: str,
    chunk_customers: int = DEFAULT_CHUNK,
) -> xr.Dataset:
    """Simulate every customer's load on the weather's time grid.

    Parameters
    ----------
    population
        ``Dataset[customer]`` (int64 ids) with the fields listed in the module docstring.
    weather
        Output of `sim.weather.build_weather` (``temperature_c``, ``pv_factor``, attr ``step_h``).
    seed
        Scenario seed; with the customer id and step it keys every random draw.
    country
        Country code of the public holidays.
    chunk_customers
        Customers per kernel call (bounds temporary memory; results do not depend on it).

    Returns
    -------
    xr.Dataset
        ``p_kw`` net active load [kW], ``q_kvar`` reactive load [kvar], ``flexible_kw`` curtailable
        device load [kW], ``pv_kw`` PV output [kW], all ``[customer, time]``; attr ``step_h`` [h].
    """
    if chunk_customers < 1:
        raise ValueError("chunk_customers must be ≥ 1")
    time, step_h, ids, weights, params, base, pad, drivers = _prepare(population, weather, seed,
                                                                      country)
    n, n_steps = len(ids), len(time)
    outputs = [np.empty((n, n_steps)) for _ in range(4)]
    seed_u = np.uint64(seed % 2**64)
    for start in range(0, n, chunk_customers):
        sl = slice(start, min(start + chunk_customers, n))
        k.simulate_customers(seed_u, ids[sl], weights[sl], base, pad, *drivers[:4], step_h,
                             params[sl], *(o[sl] for o in outputs))
    p, q, flexible, pv = outputs
    dims = ("customer", "time")
    ds = xr.Dataset(
        {
            "p_kw": (dims, p, {"units": "kW", "long_name": "net active load"}),
            "q_kvar": (dims, q, {"units": "kvar", "long_name": "reactive load"}),
            "flexible_kw": (dims, flexible, {"units": "kW", "long_name": "curtailable device load"}),
            "pv_kw": (dims, pv, {"units": "kW", "long_name": "rooftop PV output"}),
        },
        coords={"customer": ids, "time": time.values},
        attrs={"step_h": step_h, "seed": int(seed), "country": country},
    )
    return validate(ds, {name: dims for name in ("p_kw", "q_kvar", "flexible_kw", "pv_kw")},
                    stage="profiles")
