"""Synthetic customer population on a pandapower net (or one read from CSV).

Each customer sits on one in-service load element of the net (``load``) and its bus (``bus``);
the planner's load elements are aggregates, the customers are what the simulator, the credit
model and the optimizer see. Synthetic customers are spread over the load elements in proportion
to their rated ``p_mw``, every element with a positive rating getting at least one customer when
there are enough customers.

Annual energies are lognormal around typical European figures — residential ≈ 3,500 kWh
(BDEW H0 household), commercial ≈ 30 MWh, industrial ≈ 300 MWh, agricultural ≈ 15 MWh — times
``customers.energy_scale``. ``annual_kwh`` is the *base* consumption of the customer's
archetype, excluding EV charging and space heating/cooling, which the simulator adds from
``ev_kwh_per_day`` and ``heat_kw_per_degc``.

Reproducibility: every field is drawn from its own generator seeded by
``(scenario.seed, crc32(field name))`` (`stream_rng`), so adding a field does not reshuffle the
others.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import xarray as xr

from customers.population_contract import (  # noqa: F401  (re-exported: the stage contract)
    LONG_NAMES,
    REQUIRED,
    UNITS,
    population_dataset,
    validate_population,
)
from scenarios.errors import InputError
from scenarios.schema import SEGMENTS, Scenario

#: Median annual base consumption per segment [kWh] and lognormal spread [-].
ANNUAL_KWH_MEDIAN: dict[str, float] = {
    "residential": 3_500.0,
    "commercial": 30_000.0,
    "industrial": 300_000.0,
    "agricultural": 15_000.0,
}
ANNUAL_KWH_SIGMA: dict[str, float] = {
    "residential": 0.35,
    "commercial": 0.6,
    "industrial": 0.7,
    "agricultural": 0.5,
}
#: Device ownership of non-residential segments, as multiples of the residential PV share and
#: fixed air-conditioning shares (offices and shops are commonly air conditioned).
PV_SHARE_FACTOR: dict[str, float] = {"commercial": 1.0, "industrial": 0.5, "agricultural": 2.0}
AC_SHARE: dict[str, float] = {"commercial": 0.4, "industrial": 0.0, "agricultural": 0.0}
#: PV yield used to size business PV to a share of consumption [kWh/kWp/year].
PV_YIELD_KWH_PER_KWP = 950.0
#: Power factor range per segment (uniform) [-].
POWER_FACTOR_RANGE: dict[str, tuple[float, float]] = {
    "residential": (0.95, 0.99),
    "commercial": (0.90, 0.96),
    "industrial": (0.85, 0.93),
    "agricultural": (0.85, 0.95),
}
#: Deferrable share of the base (non-device) load, uniform range per segment [-].
FLEXIBILITY_RANGE: dict[str, tuple[float, float]] = {
    "residential": (0.03, 0.12),
    "commercial": (0.05, 0.20),
    "industrial": (0.05, 0.25),
    "agricultural": (0.10, 0.30),
}
#: Mean curtailment events per season a customer tolerates before satisfaction suffers [-].
COMFORT_EVENTS_MEAN: dict[str, float] = {
    "residential": 8.0,
    "commercial": 6.0,
    "industrial": 10.0,
    "agricultural": 8.0,
}
#: Median of the customer's price-response multiplier per segment [-]; businesses respond less
#: than households in the published TOU pilots (Faruqui & Sergici 2010).
ELASTICITY_MEDIAN: dict[str, float] = {
    "residential": 1.0,
    "commercial": 0.7,
    "industrial": 0.5,
    "agricultural": 0.8,
}
#: Heating/cooling electric load per kelvin of heating/cooling degree [kW/K]: heat pump (at 7 °C,
#: COP ≈ 3.5 on a ≈ 150–250 W/K house), direct electric heating, air conditioning.
HEAT_PUMP_KW_PER_K = (0.04, 0.08)
ELECTRIC_HEATING_KW_PER_K = (0.12, 0.22)
AC_KW_PER_K = (0.05, 0.12)



def stream_rng(seed: int, stream: str, *keys: int) -> np.random.Generator:
    """Independent generator for one named random stream of a scenario.

    Seeded by ``(seed, crc32(stream), *keys)`` through `numpy.random.SeedSequence`, so streams
    do not overlap and adding a stream leaves the others untouched.
    """
    entropy = [int(seed), zlib.crc32(stream.encode()), *(int(k) for k in keys)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer (Steele, Lea & Flood 2014) on a uint64 array (wrapping arithmetic)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def keyed_uniform(seed: int, stream: str, ids: np.ndarray, *slots: int) -> np.ndarray:
    """Uniform (0, 1) numbers that depend only on (seed, stream, id, slots), element-wise.

    A counter-based generator: hashing the key with SplitMix64 gives each customer its own
    reproducible numbers whatever the order, chunking or count of the other customers.
    """
    ids = np.asarray(ids).astype(np.uint64)
    h = _splitmix64(np.full(ids.shape, np.uint64(seed & 0xFFFFFFFFFFFFFFFF), dtype=np.uint64))
    h = _splitmix64(h ^ np.uint64(zlib.crc32(stream.encode())))
    for slot in slots:
        h = _splitmix64(h ^ np.uint64(int(slot) & 0xFFFFFFFFFFFFFFFF))
    h = _splitmix64(h ^ ids)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) / float(2**53)


def keyed_normal(seed: int, stream: str, ids: np.ndarray, *slots: int) -> np.ndarray:
    """Standard normal numbers keyed like `keyed_uniform` (Box–Muller)."""
    u1 = keyed_uniform(seed, stream, ids, *slots, 0)
    u2 = keyed_uniform(seed, stream, ids, *slots, 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def in_service_loads(net) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index, bus and rated ``p_mw`` of the net's in-service load elements."""
    table = net.load[net.load["in_service"].astype(bool)]
    return (
        table.index.to_numpy(np.int64),
        table["bus"].to_numpy(np.int64),
        table["p_mw"].to_numpy(np.float64),
    )


def _apportion(total: int, weights: np.ndarray, *, at_least_one: bool) -> np.ndarray:
    """Integer counts summing to ``total`` proportional to ``weights`` (largest remainder)."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    if w.sum() <= 0:
        w = np.ones_like(w)
    counts = np.zeros(len(w), dtype=np.int64)
    remaining = total
    if at_least_one and total >= int((w > 0).sum()):
        counts[w > 0] = 1
        remaining -= int((w > 0).sum())
    quota = remaining * w / w.sum()
    counts += np.floor(quota).astype(np.int64)
    left = total - int(counts.sum())
    if left > 0:
        order = np.argsort(-(quota - np.floor(quota)), kind="stable")
        counts[order[:left]] += 1
    return counts


def assign_loads(count: int, net, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Load element and bus of each of ``count`` customers, proportional to rated ``p_mw``."""
    index, buses, p_mw = in_service_loads(net)
    if len(index) == 0:
        raise InputError("network has no in-service load element to place customers on")
    counts = _apportion(count, p_mw, at_least_one=True)
    element = np.repeat(np.arange(len(index)), counts)
    # Shuffle so segments (drawn independently) are not ordered along the feeder.
    element = stream_rng(seed, "load").permutation(element)
    return index[element], buses[element]


def draw_segments(count: int, scenario: Scenario, load_p_mw: np.ndarray) -> np.ndarray:
    """Segment of each customer: exact mix counts, larger businesses on larger load elements."""
    mix = scenario.customers.mix
    shares = np.array([getattr(mix, s) for s in SEGMENTS])
    counts = _apportion(count, shares, at_least_one=False)
    rng = stream_rng(scenario.seed, "segment")
    # Rank customers by their element's rating plus noise, so industrial and commercial
    # customers land preferentially on big elements (MV feeders) without being deterministic.
    noise = rng.random(count)
    key = np.log1p(np.asarray(load_p_mw, dtype=np.float64) * 1e3) + 2.0 * noise
    ranked = np.argsort(-key, kind="stable")
    by_size = ("industrial", "commercial", "agricultural", "residential")
    segment = np.empty(count, dtype="<U12")
    start = 0
    for name in by_size:
        n = int(counts[SEGMENTS.index(name)])
        segment[ranked[start:start + n]] = name
        start += n
    return segment


def _bernoulli(rng: np.random.Generator, share: np.ndarray) -> np.ndarray:
    return rng.random(len(share)) < share


def draw_attributes(segment: np.ndarray, scenario: Scenario) -> dict[str, np.ndarray]:
    """Devices, energy and behaviour of customers with the given segments."""
    cfg = scenario.customers
    seed = scenario.seed
    n = len(segment)
    res = segment == "residential"

    names, inverse = np.unique(segment, return_inverse=True)

    def per_segment(table: dict[str, Any], default: Any = 0.0) -> np.ndarray:
        return np.array([table.get(s, default) for s in names])[inverse]

    rng = stream_rng(seed, "annual_kwh")
    median = per_segment(ANNUAL_KWH_MEDIAN)
    sigma = per_segment(ANNUAL_KWH_SIGMA)
    annual_kwh = median * np.exp(sigma * rng.standard_normal(n)) * cfg.energy_scale

    has_ev = res & _bernoulli(stream_rng(seed, "has_ev"), np.full(n, cfg.ev_share))
    has_hp = res & _bernoulli(stream_rng(seed, "has_heat_pump"), np.full(n, cfg.heat_pump_share))
    has_eh = (
        res
        & ~has_hp
        & _bernoulli(stream_rng(seed, "has_electric_heating"), np.full(n, cfg.electric_heating_share))
    )
    ac_share = np.where(res, cfg.ac_share, per_segment(AC_SHARE))
    has_ac = _bernoulli(stream_rng(seed, "has_ac"), ac_share)
    pv_share = np.clip(np.where(res, 1.0, per_segment(PV_SHARE_FACTOR)) * cfg.pv_share, 0.0, 1.0)
    has_pv = _bernoulli(stream_rng(seed, "has_pv"), pv_share)

    rng = stream_rng(seed, "pv_kwp")
    res_kwp = np.clip(6.0 * np.exp(0.3 * rng.standard_normal(n)), 2.0, 15.0)
    cover = rng.uniform(0.2, 0.6, n)
    business_kwp = annual_kwh * cover / PV_YIELD_KWH_PER_KWP
    pv_kwp = np.where(has_pv, np.where(res, res_kwp, business_kwp), 0.0)

    rng = stream_rng(seed, "ev")
    charger = np.where(rng.random(n) < 0.4, 3.7, 11.0)
    ev_kwh = np.clip(8.0 * np.exp(0.4 * rng.standard_normal(n)), 1.0, 40.0)
    ev_charger_kw = np.where(has_ev, charger, 0.0)
    ev_kwh_per_day = np.where(has_ev, ev_kwh, 0.0)

    rng = stream_rng(seed, "heat")
    hp = rng.uniform(*HEAT_PUMP_KW_PER_K, n)
    eh = rng.uniform(*ELECTRIC_HEATING_KW_PER_K, n)
    ac = rng.uniform(*AC_KW_PER_K, n)
    # Business AC scales with floor area, i.e. roughly with consumption.
    ac = np.where(res, ac, ac * annual_kwh / ANNUAL_KWH_MEDIAN["residential"])
    heat_kw_per_degc = np.where(has_hp, hp, np.where(has_eh, eh, 0.0))
    ac_kw_per_degc = np.where(has_ac, ac, 0.0)

    rng = stream_rng(seed, "power_factor")
    lo, hi = (per_segment({k: v[i] for k, v in POWER_FACTOR_RANGE.items()}) for i in (0, 1))
    power_factor = lo + (hi - lo) * rng.random(n)

    rng = stream_rng(seed, "flexibility_share")
    lo, hi = (per_segment({k: v[i] for k, v in FLEXIBILITY_RANGE.items()}) for i in (0, 1))
    flexibility_share = lo + (hi - lo) * rng.random(n)

    rng = stream_rng(seed, "comfort_events")
    comfort_events = np.maximum(rng.poisson(per_segment(COMFORT_EVENTS_MEAN)), 1).astype(np.int64)

    rng = stream_rng(seed, "elasticity_scale")
    elasticity_scale = per_segment(ELASTICITY_MEDIAN) * np.exp(0.3 * rng.standard_normal(n))

    return {
        "has_ev": has_ev,
        "has_heat_pump": has_hp,
        "has_ac": has_ac,
        "has_pv": has_pv,
        "has_electric_heating": has_eh,
        "annual_kwh": annual_kwh,
        "pv_kwp": pv_kwp,
        "ev_charger_kw": ev_charger_kw,
        "ev_kwh_per_day": ev_kwh_per_day,
        "heat_kw_per_degc": heat_kw_per_degc,
        "ac_kw_per_degc": ac_kw_per_degc,
        "power_factor": power_factor,
        "flexibility_share": flexibility_share,
        "comfort_events": comfort_events,
        "elasticity_scale": elasticity_scale,
    }


def build_population(scenario: Scenario, net) -> xr.Dataset:
    """Customers of the scenario on the net: synthetic, or read from the scenario's CSV.

    Parameters
    ----------
    scenario
        The validated scenario (``customers`` section and ``seed``).
    net
        pandapower net; customers are placed on its in-service load elements.

    Returns
    -------
    xr.Dataset
        Dims ``customer``; the fields listed in ``docs/contracts.md`` with units attrs.
    """
    cfg = scenario.customers
    if cfg.source == "file":
        from customers.io import read_customers_csv

        assert cfg.file is not None
        path = cfg.file if cfg.file.is_absolute() else scenario.base_dir / cfg.file
        return read_customers_csv(path, net)
    count = cfg.count
    load, bus = assign_loads(count, net, scenario.seed)
    p_mw = net.load["p_mw"].reindex(load).to_numpy(np.float64)
    segment = draw_segments(count, scenario, p_mw)
    fields = draw_attributes(segment, scenario)
    return population_dataset(
        np.arange(count, dtype=np.int64), bus, load, segment, fields,
        attrs={"source": "synthetic", "seed": int(scenario.seed)},
    )


def size_to_network(population: xr.Dataset, profiles: xr.Dataset, net) -> xr.DataArray:
    """Scale per customer so each load element's coincident peak matches its rated ``p_mw``.

    For every in-service load element ``e`` with customers ``C(e)``:
    ``scale_e = 1000·p_mw_e / max_t Σ_{i∈C(e)} p_kw[i, t]``; customers not on an element
    (``load = -1``) and elements whose simulated peak is not positive keep scale 1.

    Parameters
    ----------
    population
        Customers with ``load``.
    profiles
        ``p_kw[customer, time]`` [kW], the simulated net active load.
    net
        The pandapower net holding the rated ``p_mw`` [MW] of each load element.

    Returns
    -------
    xr.DataArray
        ``scale[customer]`` [-] to multiply the customer's energies (and profiles) by.
    """
    load = population["load"].values
    p = profiles["p_kw"].transpose("customer", "time").values
    scale = np.ones(len(load))
    index, _, p_mw = in_service_loads(net)
    rated = dict(zip(index.tolist(), p_mw.tolist(), strict=True))
    elements, inverse = np.unique(load, return_inverse=True)
    sums = np.zeros((len(elements), p.shape[1]))
    np.add.at(sums, inverse, p)
    peaks = sums.max(axis=1)
    for j, element in enumerate(elements.tolist()):
        if element < 0 or element not in rated or peaks[j] <= 0 or rated[element] <= 0:
            continue
        scale[inverse == j] = 1000.0 * rated[element] / peaks[j]
    return xr.DataArray(
        scale, dims="customer", coords={"customer": population["customer"].values},
        name="scale", attrs={"units": "1", "long_name": "network sizing factor"},
    )
