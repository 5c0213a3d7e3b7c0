"""Meter-data commands: screening (`gridflex data check`) and calibration (`gridflex calibrate`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scenarios.errors import InputError
from scenarios.outputs import staged_output


def check_meter_file(meter_file: Path, out: Path | None = None) -> str:
    """Screen a meter file; optionally write the per-customer report CSV. Returns a summary."""
    from sim.quality import REPORT_COUNTS, screen_meter_data

    clean, report = screen_meter_data(meter_file)
    if out is not None:
        with staged_output(out.parent) as staging:
            report.to_csv(staging / out.name, index=False)
    totals = report[list(REPORT_COUNTS)].sum()
    status = report["status"].value_counts()
    lines = [
        f"{meter_file}: {len(report)} customers, {int(totals['rows'])} rows, "
        f"{int((clean['flag'] == 'ok').sum())} clean readings",
        "status: " + ", ".join(f"{k} {v}" for k, v in status.items()),
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
) -> str:
    """Screen, fit per-customer parameters and write a customers CSV a scenario can use.

    Parameters
    ----------
    weather_file
        Weather CSV (``timestamp,temperature_c,ghi_w_m2``) covering the meter period; without
        it no temperature sensitivity is fitted.
    bus, buses_file
        Every customer's bus: one bus for all, or a CSV ``customer_id,bus``.
    """
    from customers.calibration import calibrate
    from sim.quality import screen_meter_data

    if (bus is None) == (buses_file is None):
        raise InputError("calibrate: give the customers' bus with exactly one of --bus or --buses")
    clean, _ = screen_meter_data(meter_file)
    if clean.empty:
        raise InputError(f"{meter_file}: no readable meter data")
    temperature = _temperature(weather_file, clean) if weather_file is not None else None
    mapping: int | dict[int, int] = bus if bus is not None else _bus_map(buses_file)
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


def _temperature(weather_file: Path, clean: pd.DataFrame) -> pd.Series:
    from sim.quality import ScreeningConfig
    from sim.weather import read_weather_csv

    stamps = pd.DatetimeIndex(clean["timestamp"].drop_duplicates().sort_values())
    step_h = float(pd.Series(stamps).diff().median() / pd.Timedelta(hours=1))
    temperature, _ = read_weather_csv(weather_file, stamps, step_h=step_h,
                                     tz=ScreeningConfig().tz)
    return pd.Series(temperature, index=stamps)


def _bus_map(path: Path | None) -> dict[int, int]:
    assert path is not None
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(f"{path}: unreadable buses CSV ({error})") from None
    missing = {"customer_id", "bus"} - set(frame.columns)
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    if frame[["customer_id", "bus"]].isna().any().any():
        row = int(frame[["customer_id", "bus"]].isna().any(axis=1).to_numpy().argmax()) + 2
        raise InputError(f"{path}: line {row}: customer_id and bus must be filled")
    return dict(zip(frame["customer_id"].astype(int), frame["bus"].astype(int), strict=True))
