"""The population stage contract: variables, units and checks of the ``[customer]`` Dataset.

Kept apart from `customers.population` (which builds synthetic customers or reads them through
`customers.io`) so that the CSV reader can assemble a population without importing its builder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from scenarios.errors import InputError
from scenarios.schema import SEGMENTS
from sim.dataset import validate

UNITS: dict[str, str] = {
    "bus": "1",
    "load": "1",
    "segment": "1",
    "has_ev": "bool",
    "has_heat_pump": "bool",
    "has_ac": "bool",
    "has_pv": "bool",
    "has_electric_heating": "bool",
    "annual_kwh": "kWh",
    "pv_kwp": "kWp",
    "ev_charger_kw": "kW",
    "ev_kwh_per_day": "kWh",
    "heat_kw_per_degc": "kW/degC",
    "ac_kw_per_degc": "kW/degC",
    "power_factor": "1",
    "flexibility_share": "1",
    "comfort_events": "1",
    "elasticity_scale": "1",
}
LONG_NAMES: dict[str, str] = {
    "bus": "bus of the net the customer is connected to",
    "load": "net.load index the customer is aggregated into (-1: none yet)",
    "segment": "customer segment",
    "has_ev": "owns an electric vehicle",
    "has_heat_pump": "heats with a heat pump",
    "has_ac": "has air conditioning",
    "has_pv": "has rooftop PV",
    "has_electric_heating": "heats with direct electric heating",
    "annual_kwh": "annual base consumption excluding EV and space heating/cooling",
    "pv_kwp": "installed PV peak power",
    "ev_charger_kw": "EV charger power",
    "ev_kwh_per_day": "mean EV charging energy per day",
    "heat_kw_per_degc": "electric heating load per kelvin of heating degree (heat pump at 7 degC)",
    "ac_kw_per_degc": "air-conditioning electric load per kelvin of cooling degree",
    "power_factor": "power factor of the base load",
    "flexibility_share": "deferrable share of the base load",
    "comfort_events": "curtailment events per season tolerated",
    "elasticity_scale": "multiplier on the scenario's price elasticities",
}
REQUIRED: dict[str, tuple[str, ...]] = {name: ("customer",) for name in UNITS}


def population_dataset(
    customer: np.ndarray, bus: np.ndarray, load: np.ndarray, segment: np.ndarray,
    fields: dict[str, np.ndarray], attrs: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Assemble and validate the population Dataset from plain arrays."""
    data = {"bus": np.asarray(bus, np.int64), "load": np.asarray(load, np.int64),
            "segment": np.asarray(segment, "<U12"), **fields}
    ds = xr.Dataset(coords={"customer": np.asarray(customer, np.int64)}, attrs=dict(attrs or {}))
    for name in UNITS:
        values = np.asarray(data[name])
        if name.startswith("has_"):
            values = values.astype(bool)
        elif name in ("bus", "load", "comfort_events"):
            values = values.astype(np.int64)
        elif name != "segment":
            values = values.astype(np.float64)
        ds[name] = ("customer", values, {"units": UNITS[name], "long_name": LONG_NAMES[name]})
    return validate_population(ds)


def validate_population(ds: xr.Dataset) -> xr.Dataset:
    """Stage check of a population: dims, units, no NaN, known segments, non-negative energy."""
    validate(ds, REQUIRED, stage="customers")
    unknown = sorted(set(np.unique(ds["segment"].values)) - set(SEGMENTS))
    if unknown:
        raise InputError(f"customers: unknown segment(s) {', '.join(unknown)}")
    for name in ("annual_kwh", "pv_kwp", "ev_charger_kw", "ev_kwh_per_day", "heat_kw_per_degc",
                 "ac_kw_per_degc"):
        if bool((ds[name].values < 0).any()):
            raise InputError(f"customers: '{name}' must not be negative")
    return ds
