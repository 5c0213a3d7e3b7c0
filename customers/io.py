"""Customers CSV in and out.

Columns (header row, comma separated, one customer per row):

====================== ========= ======== ==================================================
column                 unit      required default when the column is absent
====================== ========= ======== ==================================================
customer_id            –         yes      (unique; text, see below)
bus                    –         yes      (a bus index of the net)
segment                –         yes      residential / commercial / industrial / agricultural
annual_kwh             kWh       yes      (≥ 0; base consumption without EV and heating)
load                   –         no       the in-service load element at the bus with the
                                          largest p_mw; -1 when the bus has none (the
                                          pipeline then adds a load element at that bus)
has_ev, has_heat_pump,  bool     no       false (accepts true/false/1/0/yes/no)
has_ac, has_pv,
has_electric_heating
pv_kwp                 kWp       no       0
ev_charger_kw          kW        no       11 with an EV, else 0
ev_kwh_per_day         kWh       no       8 with an EV, else 0
heat_kw_per_degc       kW/degC   no       0.06 with a heat pump, 0.17 with electric heating,
                                          else 0
ac_kw_per_degc         kW/degC   no       0.08 with AC, else 0
power_factor           –         no       0.97 (in (0, 1])
flexibility_share      –         no       0.08 (in [0, 1])
comfort_events         –         no       8 (integer ≥ 0)
elasticity_scale       –         no       1 (≥ 0)
phase                  –         no       a, b, c or abc (unbalanced power flow); drawn
                                          from segment and devices when absent
====================== ========= ======== ==================================================

Customer IDs are text as written (``MTR-000123``, ``0012`` keeps its zeros). When every ID is a
plain non-negative integer without leading zeros, the IDs are the ``customer`` coordinate, as
before; otherwise the coordinate is the row position (0, 1, …) and the IDs are kept in the
``customer_id`` text variable, which travels into result.nc and every customers CSV.

Any other column in the file (e.g. credit fields written by `write_customers_csv`) is read as a
bool (true/false), number (every cell filled) or text variable; errors name the file, the line
and the column.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from customers.population_contract import UNITS, population_dataset
from scenarios.errors import InputError
from scenarios.schema import SEGMENTS

REQUIRED_COLUMNS: tuple[str, ...] = ("customer_id", "bus", "segment", "annual_kwh")
BOOL_COLUMNS: tuple[str, ...] = (
    "has_ev", "has_heat_pump", "has_ac", "has_pv", "has_electric_heating",
)
#: (lowest, highest) allowed value of each numeric column.
BOUNDS: dict[str, tuple[float, float]] = {
    "annual_kwh": (0.0, 1e9),
    "pv_kwp": (0.0, 1e6),
    "ev_charger_kw": (0.0, 1e4),
    "ev_kwh_per_day": (0.0, 1e4),
    "heat_kw_per_degc": (0.0, 1e4),
    "ac_kw_per_degc": (0.0, 1e4),
    "power_factor": (1e-3, 1.0),
    "flexibility_share": (0.0, 1.0),
    "comfort_events": (0.0, 1e4),
    "elasticity_scale": (0.0, 100.0),
}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def _fail(path: Path, line: int | None, column: str, message: str) -> InputError:
    where = f"{path}" + (f", line {line}" if line is not None else "")
    return InputError(f"{where}, column '{column}': {message}")


def _parse_bool(path: Path, column: str, values: pd.Series) -> np.ndarray:
    text = values.astype(str).str.strip().str.lower()
    bad = ~text.isin(_TRUE | _FALSE)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(path, i + 2, column, f"'{values.iloc[i]}' is not true/false")
    return text.isin(_TRUE).to_numpy()


def _parse_number(path: Path, column: str, values: pd.Series) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(numbers)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        shown = values.iloc[i]
        what = "is missing" if pd.isna(shown) or str(shown).strip() == "" else f"'{shown}' is not a number"
        raise _fail(path, i + 2, column, what)
    lo, hi = BOUNDS.get(column, (-np.inf, np.inf))
    out = np.flatnonzero((numbers < lo) | (numbers > hi))
    if len(out):
        i = int(out[0])
        raise _fail(path, i + 2, column, f"{numbers[i]:g} is outside [{lo:g}, {hi:g}]")
    return numbers


def _parse_integer(path: Path, column: str, values: pd.Series) -> np.ndarray:
    numbers = _parse_number(path, column, values)
    frac = np.flatnonzero(numbers != np.round(numbers))
    if len(frac):
        i = int(frac[0])
        raise _fail(path, i + 2, column, f"{numbers[i]:g} is not an integer")
    # Beyond 2^53 a float no longer holds every integer, and int64 overflows soon after.
    huge = np.flatnonzero(np.abs(numbers) > 2.0**53)
    if len(huge):
        i = int(huge[0])
        raise _fail(path, i + 2, column, f"{numbers[i]:g} is too large for an id")
    return numbers.astype(np.int64)


def _default_load(net, bus: np.ndarray) -> np.ndarray:
    table = net.load[net.load["in_service"].astype(bool)]
    largest = table.sort_values("p_mw", ascending=False, kind="stable").groupby("bus").head(1)
    by_bus = dict(zip(largest["bus"].astype(int), largest.index.astype(int), strict=True))
    return np.array([by_bus.get(int(b), -1) for b in bus], dtype=np.int64)


def read_customers_csv(path: Path | str, net) -> xr.Dataset:
    """Read and validate a customers CSV (columns in the module docstring).

    Raises
    ------
    InputError
        Missing file or column, empty cell, non-number, value out of bounds, unknown segment,
        duplicate ``customer_id``, bus not in the net, or ``load`` not an in-service load element
        at that bus — naming the file, the line (header = line 1) and the column.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: customers file not found")
    return customers_from_frame(read_text_csv(path), path, net)


def read_text_csv(path: Path, *, empty_hint: str = "") -> pd.DataFrame:
    """A CSV read as text cells (IDs keep their leading zeros), header names stripped.

    Raises `InputError` naming ``path`` and, where it can, the line: UTF-16 or other non-UTF-8
    bytes, an empty file (``empty_hint`` says what was expected), a row with more fields than
    the header, anything else pandas cannot parse.
    """
    raw = Path(path).read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:4096]:
        raise InputError(f"{path}: not UTF-8 text (it looks like UTF-16); save it as UTF-8 CSV")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise InputError(f"{path}, line {line}: not UTF-8 text; save the file as UTF-8 CSV") from None
    if not text.strip():
        raise InputError(f"{path}: the file is empty{empty_hint}")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            skipinitialspace=True)
    except pd.errors.ParserError as error:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        if found:
            expected, line, saw = found.groups()
            raise InputError(f"{path}, line {line}: {saw} fields, the header has {expected}") from None
        reason = str(error).strip().splitlines()[0]
        raise InputError(f"{path}: not a readable CSV ({reason})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def customers_from_frame(frame: pd.DataFrame, path: Path, net) -> xr.Dataset:
    """Validate a customers table read as text (`read_customers_csv`); errors name ``path``."""
    for column in REQUIRED_COLUMNS:
        if column not in frame.columns:
            raise _fail(path, None, column, "required column is missing")
    if len(frame) == 0:
        raise InputError(f"{path}: no customer rows")

    names = frame["customer_id"].str.strip()
    empty = (names == "").to_numpy()
    if empty.any():
        raise _fail(path, int(np.flatnonzero(empty)[0]) + 2, "customer_id", "is missing")
    dup = names.duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise _fail(path, i + 2, "customer_id", f"duplicate id {names.iloc[i]}")
    text_ids = not names.str.fullmatch(r"0|[1-9]\d{0,15}").all()
    ids = (np.arange(len(frame), dtype=np.int64) if text_ids
           else names.astype(np.int64).to_numpy())
    bus = _parse_integer(path, "bus", frame["bus"])
    known_bus = np.isin(bus, net.bus.index.to_numpy(np.int64))
    if not known_bus.all():
        i = int(np.flatnonzero(~known_bus)[0])
        raise _fail(path, i + 2, "bus", f"bus {bus[i]} is not in the network")
    segment = frame["segment"].str.strip().str.lower().to_numpy()
    bad = ~np.isin(segment, SEGMENTS)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(path, i + 2, "segment", f"'{frame['segment'].iloc[i]}' is not one of "
                    + ", ".join(SEGMENTS))

    if "load" in frame.columns:
        load = _parse_integer(path, "load", frame["load"])
        table = net.load[net.load["in_service"].astype(bool)]
        for i, (element, b) in enumerate(zip(load, bus, strict=True)):
            if element == -1:
                continue
            if element not in table.index or int(table.at[element, "bus"]) != b:
                raise _fail(path, i + 2, "load",
                            f"{element} is not an in-service load element at bus {b}")
    else:
        load = _default_load(net, bus)

    fields: dict[str, np.ndarray] = {}
    for column in BOOL_COLUMNS:
        fields[column] = (_parse_bool(path, column, frame[column]) if column in frame.columns
                          else np.zeros(len(frame), bool))
    fields["annual_kwh"] = _parse_number(path, "annual_kwh", frame["annual_kwh"])
    ev, hp = fields["has_ev"], fields["has_heat_pump"]
    eh, ac = fields["has_electric_heating"], fields["has_ac"]
    defaults = {
        "pv_kwp": np.zeros(len(frame)),
        "ev_charger_kw": np.where(ev, 11.0, 0.0),
        "ev_kwh_per_day": np.where(ev, 8.0, 0.0),
        "heat_kw_per_degc": np.where(hp, 0.06, np.where(eh, 0.17, 0.0)),
        "ac_kw_per_degc": np.where(ac, 0.08, 0.0),
        "power_factor": np.full(len(frame), 0.97),
        "flexibility_share": np.full(len(frame), 0.08),
        "comfort_events": np.full(len(frame), 8, dtype=np.int64),
        "elasticity_scale": np.ones(len(frame)),
    }
    for column, default in defaults.items():
        if column not in frame.columns:
            fields[column] = default
        elif column == "comfort_events":
            fields[column] = _parse_integer(path, column, frame[column])
        else:
            fields[column] = _parse_number(path, column, frame[column])

    ds = population_dataset(ids, bus, load, segment, fields,
                            attrs={"source": "file", "file": str(path)})
    if text_ids:
        ds["customer_id"] = ("customer", names.to_numpy().astype(str),
                             {"units": "1", "long_name": "customer id as given"})
    known = set(UNITS) | {"customer_id"}
    if "phase" in frame.columns:  # the customer's connection, for the unbalanced power flow
        from customers.phases import PHASES, parse_phases

        codes = parse_phases(frame["phase"].to_numpy(), str(path))
        ds["phase"] = ("customer", np.asarray(PHASES)[codes].astype("<U3"),
                       {"units": "1", "long_name": "phase connection (a, b, c or abc)"})
        known.add("phase")
    for column in frame.columns:
        if column in known:
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce")
        text = frame[column].str.strip().str.lower()
        if text.isin({"true", "false"}).all():
            ds[column] = ("customer", (text == "true").to_numpy(), {"units": "bool"})
        elif numbers.notna().all():
            values = numbers.to_numpy()
            ds[column] = ("customer", values, {"units": "1"})
        elif numbers.notna().any() and (numbers.notna() | (text == "")).all():
            i = int(np.flatnonzero((text == "").to_numpy())[0])
            raise _fail(path, i + 2, column, "is missing")
        else:
            ds[column] = ("customer", frame[column].str.strip().to_numpy().astype(str),
                          {"units": "1"})
    return ds


def write_customers_csv(ds: xr.Dataset, path: Path | str) -> Path:
    """Write every ``[customer]`` variable of ``ds`` as one CSV row per customer.

    The first column is ``customer_id`` (the text IDs of a ``customer_id`` variable when there
    is one, else the coordinate); booleans are written as ``true``/``false`` so the file reads
    back with `read_customers_csv`.
    """
    path = Path(path)
    ids = ds["customer_id"].values if "customer_id" in ds.data_vars else ds["customer"].values
    columns: dict[str, np.ndarray] = {"customer_id": ids}
    for name, var in ds.data_vars.items():
        if var.dims != ("customer",) or name == "customer_id":
            continue
        values = var.values
        columns[str(name)] = np.where(values, "true", "false") if values.dtype == bool else values
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(columns).to_csv(path, index=False, float_format="%.10g")
    return path
