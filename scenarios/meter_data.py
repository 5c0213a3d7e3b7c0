"""Meter-data commands: screening (`gridflex data check`) and calibration (`gridflex calibrate`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from scenarios.errors import InputError
from scenarios.outputs import staged_output

if TYPE_CHECKING:
    from sim.quality import ScreeningConfig


def check_meter_file(meter_file: Path, out: Path | None = None,
                     config: ScreeningConfig | None = None) -> str:
    """Screen a meter file; optionally write the per-customer report CSV. Returns a summary.

    The summary names every interval length found and how many meters have it (each meter is
    screened at its own).
    """
    from sim.quality import REPORT_COUNTS, UNATTRIBUTED, screen_meter_data

    clean, report = screen_meter_data(meter_file, config)
    if out is not None:
        with staged_output(out.parent) as staging:
            report.to_csv(staging / out.name, index=False)
    totals = report[list(REPORT_COUNTS)].sum()
    status = report["status"].value_counts()
    lines = [
        f"{meter_file}: {len(report)} customers, {int(totals['rows'])} rows, "
        f"{int((clean['flag'] == 'ok').sum())} clean readings",
        "status: " + ", ".join(f"{k} {v}" for k, v in status.items()),
        "intervals: " + ", ".join(
            f"{minutes:g} min {count} meter(s)" for minutes, count in
            report.loc[report["customer_id"] != UNATTRIBUTED, "step_min"].value_counts()
            .sort_index().items()),
        "found: " + ", ".join(f"{name} {int(totals[name])}" for name in REPORT_COUNTS
                              if name != "rows" and totals[name] > 0),
    ]
    if out is not None:
        lines.append(f"wrote {out}")
    return "\n".join(lines)


def calibrate_meter_file(
    meter_file: Path,
    out: Path,
    *,
    weather_file: Path | None = None,
    bus: int | None = None,
    buses_file: Path | None = None,
    config: ScreeningConfig | None = None,
) -> str:
    """Screen, fit per-customer parameters and write a customers CSV a scenario can use.

    Parameters
    ----------
    weather_file
        Weather CSV (``timestamp,temperature_c,ghi_w_m2``) covering the meter period; without
        it no temperature sensitivity is fitted.
    bus, buses_file
        Every customer's bus: one bus for all, or a CSV ``customer_id,bus``.
    config
        Screening options (time zone, thresholds).

    Meters of different interval lengths are fitted each on its own grid.
    """
    from customers.calibration import calibrate
    from sim.quality import screen_meter_data

    if (bus is None) == (buses_file is None):
        raise InputError("calibrate: give the customers' bus with exactly one of --bus or --buses")
    clean, _ = screen_meter_data(meter_file, config)
    if clean.empty:
        raise InputError(f"{meter_file}: no readable meter data")
    tz = config.tz if config is not None else None
    temperature = _temperature(weather_file, clean, tz) if weather_file is not None else None
    mapping: int | dict[str, int] = bus if bus is not None else _bus_map(buses_file)
    fitted = calibrate(clean, temperature, bus=mapping)
    # Customers with too little data get no fit; a customers file must not carry them.
    usable = fitted[fitted["annual_kwh"].notna()]
    if usable.empty:
        raise InputError(f"{meter_file}: too little data to calibrate any customer")
    with staged_output(out.parent) as staging:
        usable.to_csv(staging / out.name, index=False)
    skipped = fitted.loc[fitted["annual_kwh"].isna(), "customer_id"].tolist()
    note = f" (left out for too little data: {', '.join(map(str, skipped))})" if skipped else ""
    return f"{meter_file}: calibrated {len(usable)} of {len(fitted)} customers{note}; wrote {out}"


def _temperature(weather_file: Path, clean: pd.DataFrame, tz: str | None) -> pd.Series:
    from sim.quality import ScreeningConfig
    from sim.weather import read_weather_csv

    # The finest meter's grid: every meter's stamps lie on it (the temperature is interpolated).
    step = clean.groupby("customer_id")["timestamp"].diff().min()
    if pd.isna(step):
        step = pd.Timedelta(hours=1)
    stamps = pd.date_range(clean["timestamp"].min(), clean["timestamp"].max(), freq=step)
    step_h = float(step / pd.Timedelta(hours=1))
    temperature, _ = read_weather_csv(weather_file, stamps, step_h=step_h,
                                     tz=tz or ScreeningConfig().tz)
    return pd.Series(temperature, index=stamps)


def _bus_map(path: Path | None) -> dict[str, int]:
    assert path is not None
    try:
        frame = pd.read_csv(path, dtype={"customer_id": str}, keep_default_na=False,
                            na_values={"bus": [""]})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(f"{path}: unreadable buses CSV ({error})") from None
    missing = {"customer_id", "bus"} - set(frame.columns)
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    empty = frame["customer_id"].str.strip().eq("") | frame["bus"].isna()
    if empty.any():
        row = int(empty.to_numpy().argmax()) + 2
        raise InputError(f"{path}: line {row}: customer_id and bus must be filled")
    bus = pd.to_numeric(frame["bus"], errors="coerce")
    bad = bus.isna() | (bus != bus.round())
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise InputError(f"{path}: line {row + 2}, column 'bus': '{frame['bus'].iloc[row]}' is "
                         "not a bus index")
    return dict(zip(frame["customer_id"].str.strip(), bus.astype(int), strict=True))
