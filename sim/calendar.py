"""Calendar of the simulated window: day types, public holidays and daylight saving time.

Time in gridflex is a naive *local* clock time (``docs/contracts.md``): people switch on the
kettle at 07:00 on the wall clock whatever the season, so behaviour is keyed by local clock time
and day type. Only the sun ignores the clock, so solar geometry needs the UTC offset of every
step, which changes at the daylight-saving transitions (`utc_offset_h`).

Day types follow the German standard load profile convention (BDEW/VDEW, Meier et al. 1999,
"Repräsentative VDEW-Lastprofile"): weekday, Saturday, Sunday or public holiday; 24 and 31
December count as Saturday when they fall on a weekday.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from scenarios.errors import InputError

WEEKDAY, SATURDAY, SUNDAY_HOLIDAY = 0, 1, 2
DAY_TYPE_NAMES: tuple[str, ...] = ("weekday", "saturday", "sunday_holiday")


def holiday_dates(country: str, years: list[int]) -> set[dt.date]:
    """Public holidays of ``country`` (ISO 3166 code) in ``years``, from the `holidays` package."""
    import holidays

    try:
        calendar = holidays.country_holidays(country.upper(), years=sorted(set(years)))
    except NotImplementedError as exc:
        raise InputError(f"time.country: no public-holiday calendar for '{country}'") from exc
    return set(calendar.keys())


def day_types_of_dates(dates: pd.DatetimeIndex, country: str) -> np.ndarray:
    """Day type of each date: 0 weekday, 1 Saturday, 2 Sunday or public holiday [int8]."""
    dates = pd.DatetimeIndex(dates).normalize()
    holidays_ = holiday_dates(country, list(range(dates.year.min(), dates.year.max() + 1)))
    weekday = dates.weekday.to_numpy()
    out = np.full(len(dates), WEEKDAY, dtype=np.int8)
    out[weekday == 5] = SATURDAY
    out[weekday == 6] = SUNDAY_HOLIDAY
    # Christmas Eve and New Year's Eve behave like Saturdays (BDEW convention).
    eve = (dates.month == 12) & np.isin(dates.day, (24, 31)) & (weekday < 5)
    out[np.asarray(eve)] = SATURDAY
    is_holiday = np.fromiter((d.date() in holidays_ for d in dates), dtype=bool, count=len(dates))
    out[is_holiday] = SUNDAY_HOLIDAY
    return out


def day_types(time: pd.DatetimeIndex, country: str) -> np.ndarray:
    """Day type of every time step (local clock) [int8], see `day_types_of_dates`."""
    time = pd.DatetimeIndex(time)
    days = time.normalize()
    unique_days, inverse = np.unique(days.to_numpy(), return_inverse=True)
    return day_types_of_dates(pd.DatetimeIndex(unique_days), country)[inverse]


def utc_offset_h(time: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """UTC offset of each naive local time in time zone ``tz`` [h], daylight saving included.

    The hour repeated in autumn is read as daylight time (its first occurrence) and the hour
    skipped in spring, which a regular naive grid still contains, is shifted forward, so every
    step gets a defined offset.
    """
    time = pd.DatetimeIndex(time)
    if time.tz is not None:
        raise InputError("time must be naive local time (no time zone)")
    aware = time.tz_localize(tz, ambiguous=np.ones(len(time), dtype=bool),
                             nonexistent="shift_forward")
    offset = aware.tz_localize(None) - aware.tz_convert("UTC").tz_localize(None)
    return np.asarray(offset / pd.Timedelta(hours=1), dtype=np.float64)


def dst_transition_days(year: int, tz: str) -> tuple[dt.date | None, dt.date | None]:
    """Local dates of the spring-forward and fall-back transitions of ``tz`` in ``year``."""
    hours = pd.date_range(f"{year}-01-01", f"{year + 1}-01-01", freq="h", inclusive="left")
    offsets = utc_offset_h(hours, tz)
    jumps = np.flatnonzero(np.diff(offsets) != 0)
    spring = fall = None
    for j in jumps:
        day = hours[j + 1].date()
        if offsets[j + 1] > offsets[j]:
            spring = day
        else:
            fall = day
    return spring, fall


def hour_of_day(time: pd.DatetimeIndex) -> np.ndarray:
    """Local clock hour of each step as a float in [0, 24) [h]."""
    time = pd.DatetimeIndex(time)
    return (time.hour + time.minute / 60.0 + time.second / 3600.0).to_numpy(dtype=np.float64)


def day_index(time: pd.DatetimeIndex) -> np.ndarray:
    """Local calendar day of each step counted from 1970-01-01 [int64].

    Absolute day numbers (not relative to the window start) key the per-day random draws, so a
    customer's EV arrives at the same time on 3 March whatever window is simulated.
    """
    days = pd.DatetimeIndex(time).normalize().to_numpy().astype("datetime64[D]")
    return days.astype(np.int64)
