"""Small population Datasets with the fields of docs/contracts.md, for the load-model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr


def make_population(
    n: int,
    *,
    seed: int = 0,
    segment: str | list[str] = "residential",
    annual_kwh: float = 3500.0,
    ev_share: float = 0.3,
    heat_pump_share: float = 0.3,
    ac_share: float = 0.2,
    pv_share: float = 0.3,
    electric_heating_share: float = 0.1,
    first_id: int = 1000,
) -> xr.Dataset:
    """A population of ``n`` customers; device ownership drawn with the given shares."""
    rng = np.random.default_rng(seed)
    segments = np.resize(np.asarray(segment if isinstance(segment, list) else [segment]), n)
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    fields = {
        "segment": segments.astype("<U12"),
        "annual_kwh": np.full(n, annual_kwh),
        "has_ev": rng.random(n) < ev_share,
        "has_heat_pump": rng.random(n) < heat_pump_share,
        "has_ac": rng.random(n) < ac_share,
        "has_pv": rng.random(n) < pv_share,
        "has_electric_heating": rng.random(n) < electric_heating_share,
        "pv_kwp": rng.uniform(3.0, 10.0, n),
        "ev_charger_kw": rng.choice([3.7, 11.0], n),
        "ev_kwh_per_day": rng.uniform(5.0, 12.0, n),
        "heat_kw_per_degc": rng.uniform(0.15, 0.35, n),
        "power_factor": rng.uniform(0.9, 0.98, n),
    }
    units = {"annual_kwh": "kWh", "pv_kwp": "kW", "ev_charger_kw": "kW", "ev_kwh_per_day": "kWh",
             "heat_kw_per_degc": "kW/K", "power_factor": "1", "segment": "1"}
    return xr.Dataset(
        {name: ("customer", v, {"units": units.get(name, "bool")}) for name, v in fields.items()},
        coords={"customer": ids},
    )


def year_index(year: int = 2016, step_min: int = 15) -> pd.DatetimeIndex:
    return pd.date_range(f"{year}-01-01", f"{year + 1}-01-01", freq=f"{step_min}min",
                         inclusive="left")
