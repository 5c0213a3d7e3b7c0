"""Class load shapes from the standard load profiles shipped in the SimBench data.

SimBench (Meinecke et al. 2020, "SimBench—A Benchmark Dataset of Electric Power Systems to
Compare Innovative Solutions Based on Power Flow Analysis", Energies 13(12):3290) ships, inside
the `simbench` wheel, normalised 15-min load profiles of the year 2016 (35,136 steps, peak = 1):
households ``H0-*``, commercial ``G0-*``…``G6-*`` and agriculture ``L0-*``…``L2-*``. The
``LoadProfile.csv`` of the complete-data SimBench set holds them all; no download is needed.

A *class profile* is the mean of the class's member profiles after normalising each to a mean
of 1 (so every member weighs the same). Each simulated customer follows one member profile,
drawn uniformly from its segment's members (SimBench assigns its loads the same way), so the
mean of many customers tends to the class profile while customers stay as heterogeneous as the
members are. The simulator does not replay 2016: it uses, per member, mean daily shapes per
month × day type (weekday, Saturday, Sunday/holiday) × 15-min slot of the day, blended between
neighbouring months by day of year, so any window and country gets a calendar-correct base
shape whose year mean is 1.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd

from sim.calendar import day_types, day_types_of_dates

SLOTS_PER_DAY = 96
PROFILE_YEAR = 2016
PROFILE_COUNTRY = "DE"

# Segment → SimBench profile name prefixes. Industrial uses the "continuous operation" commercial
# profiles G3 (the SimBench low-voltage set has no industrial class of its own).
SEGMENT_PROFILES: dict[str, tuple[str, ...]] = {
    "residential": ("H0-",),
    "commercial": ("G0-", "G1-", "G2-", "G3-", "G4-", "G5-", "G6-"),
    "industrial": ("G3-",),
    "agricultural": ("L0-", "L1-", "L2-"),
}
SEGMENT_INDEX: dict[str, int] = {name: i for i, name in enumerate(SEGMENT_PROFILES)}
_SIMBENCH_SET = "1-complete_data-mixed-all-0-sw"


def simbench_load_profile_path() -> Path:
    """Path of the SimBench ``LoadProfile.csv`` inside the installed simbench package.

    Found without importing simbench, which would import pandapower (seconds).
    """
    spec = importlib.util.find_spec("simbench")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the simbench package is not installed")
    package = Path(next(iter(spec.submodule_search_locations)))
    return package / "networks" / _SIMBENCH_SET / "LoadProfile.csv"


def _cache_file() -> Path:
    root = Path(os.environ.get("GRIDFLEX_CACHE", Path.home() / ".cache" / "gridflex"))
    # "naive": rows on the naive clock (a cache written before that was on the DST clock).
    version = importlib.metadata.version("simbench")
    return root / f"simbench-{version}-class-load-profiles-naive.npz"


#: The hour of day the EU clock skips on the last Sunday of March (02:00 CET → 03:00 CEST).
SKIPPED_HOUR = 2


def on_naive_clock(stamps: pd.DatetimeIndex, values: np.ndarray, columns: list[str]
                   ) -> pd.DataFrame:
    """SimBench rows stamped on the German local clock → one row per quarter hour of 2016.

    SimBench time stamps follow the wall clock with daylight saving time: on 27 March 2016 the
    quarter hours 02:00–02:45 do not exist (the clock jumps from 02:00 CET to 03:00 CEST) and on
    30 October they occur twice. gridflex simulates on a naive local clock with 24 h every day
    (``docs/contracts.md``), so a table read row by row, or looked up by wall-clock stamp, would
    shift every summer day by an hour or miss the skipped hour. Here every row is placed at its
    wall-clock stamp, projected onto 2016 by month, day and time of day; of a repeated stamp the
    first pass (summer time) is kept; the skipped quarter hours (hour `SKIPPED_HOUR` of a March
    day) are interpolated linearly in time between 01:45 and 03:00. Any other stamp the table
    lacks stays NaN for the caller to report.

    Parameters
    ----------
    stamps
        Wall-clock start time of each row (any year; Feb 29 needs a leap-year table).
    values
        Rows ``[row, column]``.
    columns
        Column names.

    Returns
    -------
    pd.DataFrame
        Index: the 35,136 quarter hours of 2016 (naive clock); columns as given.
    """
    stamps = pd.DatetimeIndex(stamps)
    projected = pd.to_datetime(stamps.strftime(f"{PROFILE_YEAR}-%m-%d %H:%M"), errors="coerce")
    keep = ~projected.isna() & ~projected.duplicated(keep="first")
    year = pd.date_range(f"{PROFILE_YEAR}-01-01", f"{PROFILE_YEAR + 1}-01-01", freq="15min",
                         inclusive="left")
    frame = pd.DataFrame(np.asarray(values, dtype=np.float64)[keep], index=projected[keep],
                         columns=columns).reindex(year)
    skipped = frame.isna().any(axis=1).to_numpy() & (year.month == 3) & (year.hour == SKIPPED_HOUR)
    if skipped.any():
        filled = frame.interpolate(method="time", limit_area="inside")
        frame.iloc[skipped] = filled.iloc[skipped]
    return frame


@functools.lru_cache(maxsize=1)
def standard_profiles() -> pd.DataFrame:
    """Every household, commercial and agricultural active-power profile of SimBench.

    Returns
    -------
    pd.DataFrame
        Index: the 35,136 15-min start times of 2016 on the naive local clock (24 h every
        day, see `on_naive_clock`); columns: profile names (``H0-A``, ``G1-B``, ``L2-M``, …);
        values: normalised active power (peak 1) [-].
    """
    cache = _cache_file()
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return pd.DataFrame(data["values"], index=pd.DatetimeIndex(data["time"]),
                                columns=[str(c) for c in data["names"]])
    path = simbench_load_profile_path()
    header = pd.read_csv(path, sep=";", nrows=0).columns
    wanted = [c for c in header if c.endswith("_pload") and c[0] in "HGL" and c[1].isdigit()]
    raw = pd.read_csv(path, sep=";", usecols=["time", *wanted])
    time = pd.to_datetime(raw["time"], format="%d.%m.%Y %H:%M")
    frame = on_naive_clock(pd.DatetimeIndex(time), raw[wanted].to_numpy(dtype=np.float64),
                           [c.removesuffix("_pload") for c in wanted])
    if frame.isna().to_numpy().any():
        raise ValueError(f"{path}: profiles do not cover every quarter hour of {PROFILE_YEAR}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, values=frame.to_numpy(), time=frame.index.to_numpy(),
             names=np.array(frame.columns, dtype=str))
    tmp.replace(cache)
    return frame


def class_profile(segment: str) -> pd.Series:
    """Class profile of a segment over 2016: mean of its members normalised to mean 1 [-]."""
    frame = standard_profiles()
    members = [c for c in frame.columns if c.startswith(SEGMENT_PROFILES[segment])]
    values = frame[members].to_numpy()
    return pd.Series((values / values.mean(axis=0)).mean(axis=1), index=frame.index, name=segment)


def full_load_hours(profile: np.ndarray, step_h: float) -> float:
    """Full-load hours: energy over the peak, ``Σ p·Δt / max p`` [h]."""
    profile = np.asarray(profile, dtype=np.float64)
    return float(profile.sum() * step_h / profile.max())


@functools.lru_cache(maxsize=1)
def member_names() -> tuple[str, ...]:
    """Names of every SimBench profile some segment draws its customers' shapes from."""
    prefixes = tuple(p for group in SEGMENT_PROFILES.values() for p in group)
    return tuple(c for c in standard_profiles().columns if c.startswith(prefixes))


def segment_members(segment: str) -> np.ndarray:
    """Indices into `member_names` of a segment's profiles [int64]."""
    prefixes = SEGMENT_PROFILES[segment]
    return np.array([i for i, c in enumerate(member_names()) if c.startswith(prefixes)],
                    dtype=np.int64)


def _table(profile: pd.Series) -> np.ndarray:
    """Mean daily shape per month × day type × slot of a 2016 profile, year mean of 1."""
    days = pd.DatetimeIndex(profile.index.normalize().unique())
    kinds = day_types_of_dates(days, PROFILE_COUNTRY)
    daily = profile.to_numpy().reshape(len(days), SLOTS_PER_DAY)
    table = np.empty((12, 3, SLOTS_PER_DAY))
    for month in range(12):
        in_month = days.month == month + 1
        for kind in range(3):
            sel = in_month & (kinds == kind)
            if not sel.any():  # no holiday that month: nothing to average, use Sundays
                sel = in_month & (kinds == 2)
            table[month, kind] = daily[sel].mean(axis=0)
    year = pd.date_range(f"{PROFILE_YEAR}-01-01", f"{PROFILE_YEAR + 1}-01-01", freq="15min",
                         inclusive="left")
    series = _series_from_table(table, year, day_types(year, PROFILE_COUNTRY), 0.25)
    table /= series.mean()
    table.setflags(write=False)
    return table


@functools.lru_cache(maxsize=8)
def shape_table(segment: str) -> np.ndarray:
    """Mean daily shape of a segment's class profile, ``[12 month, 3 day type, 96 slot]`` [-].

    Scaled so that the base series `base_series` builds over the profile year has mean 1.
    """
    return _table(class_profile(segment))


@functools.lru_cache(maxsize=64)
def member_table(name: str) -> np.ndarray:
    """`shape_table` of one SimBench member profile (``H0-A``, ``G3-M``, …) [-]."""
    return _table(standard_profiles()[name])


def _month_blend(time: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Months on either side of each step's day and the weight of the later one."""
    days_in_year = np.where(time.is_leap_year, 366.0, 365.0)
    position = (np.asarray(time.dayofyear, dtype=np.float64) - 0.5) / days_in_year * 12.0 - 0.5
    lower = np.floor(position)
    weight = position - lower
    m0 = np.mod(lower, 12).astype(np.int64)
    return m0, np.mod(m0 + 1, 12), weight


def _series_from_table(
    table: np.ndarray, time: pd.DatetimeIndex, kinds: np.ndarray, step_h: float
) -> np.ndarray:
    minute = np.asarray(time.hour * 60 + time.minute, dtype=np.float64)
    m0, m1, w = _month_blend(time)
    step_min = step_h * 60.0
    # Average the 15-min slots the step covers (or take the slot a sub-15-min step falls in).
    count = max(1, int(round(step_min / 15.0)))
    out = np.zeros(len(time))
    for k in range(count):
        slot = (np.floor(minute / 15.0).astype(np.int64) + k) % SLOTS_PER_DAY
        out += (1.0 - w) * table[m0, kinds, slot] + w * table[m1, kinds, slot]
    return out / count


def member_base_series(time: pd.DatetimeIndex, country: str, step_h: float) -> np.ndarray:
    """`base_series` of every member profile, ``[member, time]`` in `member_names` order [-]."""
    time = pd.DatetimeIndex(time)
    kinds = day_types(time, country)
    return np.stack([_series_from_table(member_table(name), time, kinds, step_h)
                     for name in member_names()])


def base_series(
    segment: str, time: pd.DatetimeIndex, country: str, step_h: float
) -> np.ndarray:
    """Calendar-correct base shape of a segment on a time grid (year mean ≈ 1) [-].

    Parameters
    ----------
    segment
        ``residential``, ``commercial``, ``industrial`` or ``agricultural``.
    time
        Naive local step start times.
    country
        Country whose public holidays make Sunday-type days.
    step_h
        Step length [h].
    """
    time = pd.DatetimeIndex(time)
    return _series_from_table(shape_table(segment), time, day_types(time, country), step_h)
