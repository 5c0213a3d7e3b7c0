"""Writing results: all files of a run appear together or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import xarray as xr

from scenarios.errors import InputError

KPI_UNITS: dict[str, str] = {
    "peak_kw_before": "kW",
    "peak_kw_after_expected": "kW",
    "peak_kw_after_p10": "kW",
    "peak_kw_after_p50": "kW",
    "peak_kw_after_p90": "kW",
    "incentive_eur": "EUR",
    "bad_debt_eur": "EUR",
    "satisfaction_mean_before": "1",
    "satisfaction_mean_after": "1",
    "violations_before": "1",
    "violations_after": "1",
    "nonconverged_steps": "1",
    "nonconverged_steps_after": "1",
    "energy_kwh": "kWh",
    "acceptance_rate": "1",
    "objective_eur": "EUR",
    # plan and replay on one basis (the window), event calls
    "peak_kw_after_planned_p10": "kW",
    "peak_kw_after_planned_p90": "kW",
    "peak_cut_planned_kw": "kW",
    "peak_cut_realized_kw": "kW",
    "peak_cut_realized_pct": "%",
    "realized_share_of_planned_pct": "%",
    "event_hit_rate_top_days": "1",
}


def check_writable(out_dir: Path) -> None:
    """Fail before any work when the output folder cannot be written."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder {out_dir}: exists and is not a folder")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir.parent):
            pass
    except OSError as error:
        raise InputError(f"output folder {out_dir}: cannot write ({error.strerror or error})") from None


@contextmanager
def staged_output(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success move its files into `out_dir`.

    Files are moved one by one with `os.replace` (atomic per file on one file system); on any
    error the temporary folder is removed and `out_dir` is left as it was.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as error:
        raise InputError(f"output folder {out_dir}: cannot write ({error.strerror or error})") from None
    try:
        yield staging
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            for item in sorted(staging.iterdir()):
                os.replace(item, out_dir / item.name)
        except OSError as error:
            raise InputError(f"output folder {out_dir}: cannot write ({error.strerror or error})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_result(ds: xr.Dataset, path: Path) -> None:
    """Write a Dataset as netCDF-4 (h5netcdf), compressed; bools stored as int8 flags."""
    encoding = {}
    for name, var in ds.variables.items():
        if var.ndim >= 1 and var.dtype.kind in "fiu" and var.size > 1024:
            encoding[name] = {"compression": "gzip", "compression_opts": 4}
    clean = ds.copy()
    for name, value in list(clean.attrs.items()):
        if isinstance(value, bool):
            clean.attrs[name] = int(value)
        elif isinstance(value, list | tuple):
            # netCDF attributes hold no string arrays portably: one comma-separated string.
            clean.attrs[name] = ", ".join(str(v) for v in value)
    try:
        clean.to_netcdf(path, engine="h5netcdf", encoding=encoding)
    except OSError as error:
        raise InputError(f"{path}: cannot write ({error.strerror or error})") from None
