"""Load-element totals of a long simulated period, streamed customer chunk by customer chunk.

Forecasters train on a history (a year before the window); with 20,000 customers a year at
15 min would be 20,000 × 35,040 × 8 B = 5.6 GB per array. Here each chunk of customers is
simulated, scaled, added onto its load element and dropped, so memory is
``chunk × steps + load elements × steps`` whatever the population size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from sim import kernels as k
from sim.calendar import day_index, hour_of_day
from sim.profiles import customer_parameters, padded_base

CHUNK_CUSTOMERS = 32  # a year of a chunk's four outputs stays about L3-sized (see profiles.py)


@dataclass(frozen=True)
class ElementLoad:
    """Active and reactive load summed per load element ``[element, time]``."""

    time: pd.DatetimeIndex
    p_kw: np.ndarray
    q_kvar: np.ndarray


def simulate_element_load(
    population: xr.Dataset, weather: xr.Dataset, *, seed: int, country: str,
    element: np.ndarray, element_count: int, scale: np.ndarray | None = None,
    chunk_customers: int = CHUNK_CUSTOMERS,
) -> ElementLoad:
    """Simulate every customer on ``weather``'s time grid; keep only load-element sums.

    Parameters
    ----------
    population
        ``Dataset[customer]`` as for `sim.profiles.simulate_profiles`.
    weather
        ``temperature_c``, ``pv_factor`` on the time grid, attr ``step_h``.
    element
        ``[customer]`` position of the load element each customer feeds, ``0 .. element_count−1``.
    scale
        ``[customer]`` factor each customer's p and q are multiplied by (network sizing), 1 if
        omitted.

    Returns
    -------
    ElementLoad
        Sums in kW and kvar; the same numbers (up to summation order) as summing
        `simulate_profiles` × scale over the customers of each element.
    """
    time = pd.DatetimeIndex(weather["time"].values)
    step_h = float(weather.attrs["step_h"])
    ids = np.asarray(population["customer"].values).astype(np.int64)
    n, n_steps = len(ids), len(time)
    element = np.ascontiguousarray(element, dtype=np.int64)
    if element.shape != (n,) or (n and (element.min() < 0 or element.max() >= element_count)):
        raise ValueError("element must give a load-element position per customer")
    factor = np.ones(n) if scale is None else np.asarray(scale, dtype=np.float64)
    weights, params = customer_parameters(population, seed)
    base, pad = padded_base(time, country, step_h)
    temperature = np.ascontiguousarray(weather["temperature_c"].values, dtype=np.float64)
    pv = np.ascontiguousarray(weather["pv_factor"].values, dtype=np.float64)
    hours, days = hour_of_day(time), day_index(time)
    p_total = np.zeros((element_count, n_steps))
    q_total = np.zeros((element_count, n_steps))
    size = max(1, min(chunk_customers, n))
    buffers = [np.empty((size, n_steps)) for _ in range(4)]
    seed_u = np.uint64(seed % 2**64)
    for start in range(0, n, size):
        stop = min(start + size, n)
        out = [b[: stop - start] for b in buffers]
        k.simulate_customers(seed_u, ids[start:stop], weights[start:stop], base, pad, temperature,
                             pv, hours, days, step_h, params[start:stop], *out)
        out[0] *= factor[start:stop, None]
        out[1] *= factor[start:stop, None]
        k.add_rows_by_group(element[start:stop], out[0], p_total)
        k.add_rows_by_group(element[start:stop], out[1], q_total)
    return ElementLoad(time, p_total, q_total)
