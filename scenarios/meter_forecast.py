"""Forecast inputs from measured data: the total of a meter file, screened, before and after an origin.

The customers' readings are screened (`sim.quality.screen_meter_data`), summed per step into
the total load [kW] and cut into whole days. Days before the origin are the history; the origin
day and those after it are the window forecast day by day. A step where any meter's reading is
missing leaves the total unknown (NaN): such days are left out of training and scoring, but a
gap at the origin itself is an error, since the forecast issued there would lack its lags.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.errors import InputError
from scenarios.forecasting import ForecastInputs, check_history_days

DEFAULT_WINDOW_DAYS = 7
METER_SEED = 0  # the forecast-weather error stream of meter forecasts


def meter_total_kw(path: Path) -> pd.Series:
    """Screened total load of all meters on a regular naive-local grid of whole days [kW]."""
    from sim.quality import screen_meter_data

    clean, _ = screen_meter_data(path)
    if clean.empty:
        raise InputError(f"meter file {path}: no readable meter data")
    stamps = pd.DatetimeIndex(clean["timestamp"]).unique().sort_values()
    step = pd.Series(np.diff(stamps.asi8)).mode()
    if len(step) == 0:
        raise InputError(f"meter file {path}: timestamp: needs more than one reading time")
    step = pd.Timedelta(int(step.iloc[0]))
    if pd.Timedelta(days=1) % step != pd.Timedelta(0):
        raise InputError(f"meter file {path}: timestamp: interval {step} does not divide a day")
    wide = clean.pivot_table(index="timestamp", columns="customer_id", values="kwh",
                             aggfunc="first", dropna=False)
    # A step is known only when every meter is: a missing meter would read as a load drop.
    total = wide.sum(axis=1).where(wide.notna().all(axis=1))
    first_day = stamps[0].ceil("D") if stamps[0] != stamps[0].normalize() else stamps[0]
    last_day = (stamps[-1] + step).floor("D")
    grid = pd.date_range(first_day, last_day, freq=step, inclusive="left")
    if len(grid) == 0:
        raise InputError(f"meter file {path}: timestamp: no whole day of readings")
    return total.reindex(grid) / (step / pd.Timedelta(hours=1))


def meter_forecast_inputs(
    path: Path, *, origin: str | None, weather_file: Path | None, country: str = "DE",
    climate: str = "temperate",
) -> tuple[ForecastInputs, str, str, int, int]:
    """(inputs, name, country, seed, window days) of a meter file's total, split at ``origin``."""
    from sim.weather import CLIMATES, clear_sky_ghi, read_weather_csv

    total = meter_total_kw(path)
    time = pd.DatetimeIndex(total.index)
    days = time.normalize().unique()
    if origin is None:
        origin_day = days[max(0, len(days) - DEFAULT_WINDOW_DAYS)]
    else:
        try:
            origin_day = pd.Timestamp(origin).normalize()
        except ValueError:
            raise InputError(f"--origin: '{origin}' is not a date (YYYY-MM-DD)") from None
    if origin_day not in days:
        raise InputError(f"--origin: {origin_day.date()} is outside the meter data "
                         f"({days[0].date()} to {days[-1].date()})")
    history_days = int(days.get_loc(origin_day))
    window_days = len(days) - history_days
    check_history_days(history_days, window_days,
                       field=f"meter file {path}: --origin {origin_day.date()}")
    _check_origin_gap(path, total, origin_day)
    step_h = (time[1] - time[0]) / pd.Timedelta(hours=1)
    site = CLIMATES[climate]
    if weather_file is not None:
        temperature, ghi = read_weather_csv(weather_file, time, step_h=step_h, tz=site.tz)
    else:
        # No weather: the forecaster runs on calendar and load lags alone (constant weather).
        temperature, ghi = np.full(len(time), 10.0), np.zeros(len(time))
    inputs = ForecastInputs(
        head_kw=total, temperature_c=temperature, ghi_w_m2=ghi,
        clear_ghi_w_m2=clear_sky_ghi(site, time, step_h),
        generation_kw=np.zeros(len(time)), capacity_kw=0.0, history_days=history_days,
    )
    return inputs, Path(path).stem, country, METER_SEED, window_days


def _check_origin_gap(path: Path, total: pd.Series, origin_day: pd.Timestamp) -> None:
    """A run of unknown steps touching the origin (its last step before or first step after)."""
    at = total.index.searchsorted(origin_day)
    missing = total.isna().to_numpy()
    around = [i for i in (at - 1, at) if 0 <= i < len(total)]
    if not any(missing[i] for i in around):
        return
    start = next(i for i in around if missing[i])
    while start > 0 and missing[start - 1]:
        start -= 1
    stop = start
    while stop + 1 < len(total) and missing[stop + 1]:
        stop += 1
    raise InputError(f"meter file {path}: timestamp: readings missing from "
                     f"{total.index[start]} to {total.index[stop]}, across the forecast origin "
                     f"{origin_day} (choose another --origin or fill the gap)")
