"""The labelled data structure passed between stages, and its boundary check.

Every stage hands on an ``xarray.Dataset`` whose dims come from a fixed vocabulary and whose
variables each carry a ``units`` attr. `validate` is called at each stage boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import xarray as xr

DIMS: frozenset[str] = frozenset(
    {"customer", "time", "bus", "line", "trafo", "offer", "tier", "draw", "scenario", "point",
     "load", "sgen", "step", "factor", "quantile", "period", "month",
     # event calls: curtailment contract, window day, optimizer round
     "contract", "day", "round"}
)


class DatasetError(ValueError):
    """A Dataset broke the stage contract (dims, dtypes, units or NaN)."""


def validate(
    ds: xr.Dataset,
    required: Mapping[str, tuple[str, ...]] | None = None,
    *,
    stage: str = "",
    allow_nan: Iterable[str] = (),
) -> xr.Dataset:
    """Check a stage's Dataset and return it unchanged.

    Parameters
    ----------
    ds
        The Dataset to check.
    required
        Variable name → expected dims, for the variables this stage must provide.
    stage
        Stage name for the error message.
    allow_nan
        Variables where NaN is meaningful (e.g. results of non-converged steps).
    """
    where = f"{stage}: " if stage else ""
    for dim in ds.dims:
        if dim not in DIMS:
            raise DatasetError(f"{where}unknown dimension '{dim}'")
    for name, dims in (required or {}).items():
        if name not in ds:
            raise DatasetError(f"{where}missing variable '{name}'")
        if tuple(ds[name].dims) != tuple(dims):
            raise DatasetError(f"{where}'{name}' has dims {ds[name].dims}, expected {dims}")
    nan_ok = set(allow_nan)
    for name, var in ds.data_vars.items():
        if "units" not in var.attrs:
            raise DatasetError(f"{where}variable '{name}' has no units attr")
        if var.dtype.kind == "O":
            raise DatasetError(f"{where}variable '{name}' has object dtype")
        if var.dtype.kind == "f" and name not in nan_ok and bool(np.isnan(var.values).any()):
            raise DatasetError(f"{where}variable '{name}' contains NaN")
    if "time" in ds.dims and "time" in ds.coords:
        if not np.issubdtype(ds["time"].dtype, np.datetime64):
            raise DatasetError(f"{where}time coordinate must be datetime64")
    return ds
