"""Meter files in the layouts utilities export, read into the long text frame screening expects.

Layouts (CSV always; Parquet when `pyarrow` is installed), recognised by their columns:

- **long**: ``customer_id, timestamp, kwh`` — energy of the interval starting at the stamp;
- **long cumulative**: ``customer_id, timestamp, reading_kwh`` — the register's cumulative
  reading at the stamp; the interval ``[t_k, t_k+1)`` gets ``reading(t_k+1) − reading(t_k)``
  (the last reading closes the last interval; a register reset gives a negative interval,
  which screening reports and repairs like any negative reading);
- **wide**: ``timestamp`` and one column per meter, named by its ID (energy per interval);
  with ``cumulative=True`` the columns are register readings.

IDs are text as written in the file (a wide header ``0012`` stays ``0012``). The frame returned
has the text columns ``customer_id, timestamp, kwh`` (`sim.quality.COLUMNS`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.errors import InputError

LONG = ("customer_id", "timestamp", "kwh")


def read_meter_table(path: Path | str, *, cumulative: bool = False) -> pd.DataFrame:
    """Read a meter file in any supported layout as the long text frame.

    Parameters
    ----------
    path
        CSV or Parquet (``.parquet``/``.pq``) file.
    cumulative
        The wide layout holds cumulative register readings [kWh] instead of interval energy
        (the long layout says so by its ``reading_kwh`` column).
    """
    frame = _read_text(Path(path))
    columns = set(frame.columns)
    if {"customer_id", "timestamp", "kwh"} <= columns:
        return frame[list(LONG)]
    if {"customer_id", "timestamp", "reading_kwh"} <= columns:
        return _from_cumulative(frame.rename(columns={"reading_kwh": "reading"}))
    if "timestamp" in columns and "customer_id" not in columns and len(columns) > 1:
        meters = [c for c in frame.columns if c != "timestamp"]
        long = frame.melt(id_vars="timestamp", value_vars=meters, var_name="customer_id",
                          value_name="value")
        long = long[long["value"].str.strip() != ""]  # an empty cell: no reading
        if cumulative:
            return _from_cumulative(long.rename(columns={"value": "reading"}))
        return long.rename(columns={"value": "kwh"})[list(LONG)]
    raise InputError(f"meter file {path}: missing column(s): expected customer_id,timestamp,kwh "
                     "(long), customer_id,timestamp,reading_kwh (cumulative) or timestamp and "
                     "one column per meter (wide)")


def _read_text(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"meter file {path} not found")
    if path.suffix.lower() in (".parquet", ".pq"):
        if importlib.util.find_spec("pyarrow") is None:
            raise InputError(f"meter file {path}: reading Parquet needs pyarrow "
                             "(pip install pyarrow), or give a CSV")
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 — pyarrow raises many types for a bad file
            raise InputError(f"meter file {path}: unreadable Parquet ({exc})") from None
        frame = frame.astype(str)
    else:
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                                on_bad_lines="skip")
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise InputError(f"meter file {path}: unreadable CSV "
                             f"({str(exc).splitlines()[0]})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _from_cumulative(frame: pd.DataFrame) -> pd.DataFrame:
    """Interval energy from cumulative readings, per meter in time order (text out).

    Unreadable readings are left out before differencing, so the interval around them spans
    the two readable neighbours — screening sees it as a longer step (a gap) and fills it.
    """
    reading = pd.to_numeric(frame["reading"].str.strip(), errors="coerce")
    # Only to order each meter's readings (UTC for stamps with offsets, naive ones as written).
    stamp = pd.to_datetime(frame["timestamp"].str.strip(), errors="coerce", format="ISO8601",
                           utc=True)
    keep = reading.notna() & stamp.notna()
    part = pd.DataFrame({"customer_id": frame["customer_id"].str.strip()[keep],
                         "timestamp": frame["timestamp"].str.strip()[keep],
                         "stamp": stamp[keep], "reading": reading[keep]})
    part = part.sort_values(["customer_id", "stamp"], kind="stable")
    kwh = part.groupby("customer_id", sort=False)["reading"].diff(-1).to_numpy() * -1.0
    last = np.isnan(kwh)
    out = part.loc[~last, ["customer_id", "timestamp"]].copy()
    out["kwh"] = [f"{v:.10g}" for v in kwh[~last]]
    return out.reset_index(drop=True)
