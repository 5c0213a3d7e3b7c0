"""Meter-data screening: validate interval data, repair what is safe, report everything.

Input is long format ``customer_id,timestamp,kwh`` (energy per interval, interval *start* stamps,
local wall-clock time with daylight saving, or ISO stamps with a UTC offset). Customer (meter)
IDs are text: ``MTR-000123`` and ``0012`` are kept exactly as written (surrounding blanks
stripped); numbers are IDs like any other. CSV always; Parquet when `pyarrow` is installed
(other layouts — wide, cumulative register reads — are converted by `sim.meter_files`).

Every meter is screened at its own interval length, inferred from its own readings (the most
common step between them; ``step_min`` only when a meter has a single reading), so one file
may mix 15-min and hourly meters without either's energy changing; the report gives each
meter's ``step_min``. A meter whose own readings switch interval length (sustained runs of two
different steps) is refused with an `InputError` naming the meters: filling the longer
intervals as gaps would multiply their energy.

Checks, in the spirit of the VEE (validation, estimation, editing) rules of meter data
management (e.g. Ofgem/ELEXON BSCP502, AEMO "Metrology Procedure Part B" validation and
substitution):

- unreadable rows (customer, timestamp or value) — dropped and counted, never fatal;
- duplicates — identical repeats dropped; conflicting repeats keep the first reading;
- negative and impossible values (above ``max_kw`` × interval) — removed, then estimated;
- spikes — isolated readings above ``spike_ratio`` × both neighbours and above
  ``spike_level`` × the customer's 99.5th percentile (EV charging and heat-pump cycling are
  legitimate steps; a meter glitch is far beyond them) — replaced;
- stuck meters — the same non-zero reading ``stuck_steps`` times in a row — removed;
- gaps — holes in the customer's regular grid: runs of at most ``max_repair_steps`` are filled
  by linear interpolation (flag ``repaired``), longer runs stay NaN and are reported;
- time zone / DST — stamps with UTC offsets are converted to local time; the hour that local
  clocks skip in spring is filled and the hour they repeat in autumn is merged (mean), so the
  clean data sit on the naive local grid gridflex uses; a meter whose clock ignores DST (it
  reports readings inside the skipped spring hour) has its summer stamps moved one hour on.

`screen_meter_data` returns the clean long frame (on a regular grid per customer, with a
``flag`` column) and a per-customer report.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.errors import InputError
from sim.calendar import dst_transition_days

COLUMNS = ("customer_id", "timestamp", "kwh")
UNATTRIBUTED = "(none)"  # report row for lines without a customer id
MIXED_RUN = 4  # consecutive equal steps (other than the meter's own) that mean a second interval
_AWARE = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")

REPORT_COUNTS = (
    "rows", "bad_rows", "duplicates", "conflicting_duplicates", "negative", "impossible",
    "spikes", "stuck_steps", "missing_steps", "repaired_steps", "long_gaps", "long_gap_steps",
    "tz_converted", "dst_filled", "dst_merged", "dst_clock_corrected",
)


@dataclass(frozen=True)
class ScreeningConfig:
    """Thresholds of the screening rules."""

    step_min: int | None = None     # interval of meters with one reading [min]; else inferred
    tz: str = "Europe/Berlin"       # local time zone of the meters
    max_repair_steps: int = 4       # longest gap filled by interpolation [steps]
    max_kw: float = 250.0           # largest plausible mean power of one meter [kW]
    spike_level: float = 3.0        # spike: above spike_level × the customer's 99.5th percentile
    spike_ratio: float = 4.0        # ... and above spike_ratio × both neighbours
    stuck_steps: int = 12           # identical non-zero readings in a row that mean stuck


def read_meter_file(path: Path) -> pd.DataFrame:
    """Read a meter file as text (any layout of `sim.meter_files`: long, wide, cumulative)."""
    from sim.meter_files import read_meter_table

    return read_meter_table(Path(path))


def screen_meter_data(
    source: Path | str | pd.DataFrame, config: ScreeningConfig | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Screen interval meter data.

    Parameters
    ----------
    source
        Path of a CSV/Parquet file or a DataFrame with columns ``customer_id``, ``timestamp``,
        ``kwh`` (energy of the interval starting at the stamp [kWh]).
    config
        Screening thresholds (`ScreeningConfig`).

    Returns
    -------
    clean : pd.DataFrame
        ``customer_id`` (str), ``timestamp`` (naive local, regular per customer at that
        customer's own interval), ``kwh`` (NaN inside long gaps), ``flag`` (``ok``,
        ``repaired``, ``gap``).
    report : pd.DataFrame
        One row per customer (plus ``customer_id = "(none)"`` for rows without a customer id):
        the counts in `REPORT_COUNTS`, ``first``, ``last``, ``step_min``, ``completeness_pct``
        and ``status`` (``ok``, ``repaired``, ``incomplete``).
    """
    config = config or ScreeningConfig()
    raw = source.copy() if isinstance(source, pd.DataFrame) else read_meter_file(Path(source))
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(f"meter data: missing column(s) {', '.join(missing)}")
    parsed, bad_by_customer = _parse(raw[list(COLUMNS)].astype(str), config.tz)
    steps = meter_steps(parsed, config.step_min)
    clean_parts, reports = [], []
    for cid, rows in parsed.groupby("customer_id", sort=True):
        counts = dict.fromkeys(REPORT_COUNTS, 0)
        counts["bad_rows"] = bad_by_customer.pop(cid, 0)
        counts["tz_converted"] = int(rows["converted"].sum())
        clean, info = _screen_customer(rows, steps[cid], config, counts)
        clean.insert(0, "customer_id", cid)
        clean_parts.append(clean)
        reports.append({"customer_id": cid, **counts, **info})
    for cid, bad in bad_by_customer.items():
        reports.append({"customer_id": cid, **dict.fromkeys(REPORT_COUNTS, 0),
                        "bad_rows": bad, "rows": bad, "status": "incomplete"})
    report = pd.DataFrame(reports)
    if report.empty:
        report = pd.DataFrame(columns=["customer_id", *REPORT_COUNTS, "status"])
    report = report.sort_values("customer_id", kind="stable").reset_index(drop=True)
    clean = (pd.concat(clean_parts, ignore_index=True) if clean_parts else
             pd.DataFrame({"customer_id": pd.Series(dtype=str),
                           "timestamp": pd.Series(dtype="datetime64[ns]"),
                           "kwh": pd.Series(dtype=np.float64), "flag": pd.Series(dtype=str)}))
    return clean, report


def _parse(raw: pd.DataFrame, tz: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Typed rows; unreadable rows are counted per customer (or under "(none)") and dropped."""
    cid = raw["customer_id"].str.strip()
    cid_ok = (cid != "") & ~cid.str.lower().isin({"nan", "none", "<na>"})
    stamps = raw["timestamp"].str.strip()
    aware = stamps.str.contains(_AWARE)
    local = pd.to_datetime(stamps.where(~aware), errors="coerce", format="ISO8601")
    utc = pd.to_datetime(stamps.where(aware), errors="coerce", format="ISO8601", utc=True)
    converted = utc.dt.tz_convert(tz).dt.tz_localize(None)
    timestamp = local.where(~aware, converted)
    kwh = pd.to_numeric(raw["kwh"].str.strip(), errors="coerce")
    good = cid_ok & timestamp.notna() & kwh.notna() & np.isfinite(kwh.fillna(np.nan))
    bad: dict[str, int] = {}
    for value in np.where(cid_ok[~good], cid[~good], UNATTRIBUTED):
        bad[str(value)] = bad.get(str(value), 0) + 1
    parsed = pd.DataFrame({
        "customer_id": cid[good].to_numpy(dtype=object).astype(str),
        "timestamp": timestamp[good].to_numpy(dtype="datetime64[ns]"),
        "kwh": kwh[good].to_numpy(dtype=np.float64),
        "converted": aware[good].to_numpy(),
    })
    return parsed, bad


def meter_steps(parsed: pd.DataFrame, step_min: int | None = None) -> dict[str, pd.Timedelta]:
    """Each meter's own interval length: the most common positive step between its readings.

    ``step_min`` [min] serves meters with a single reading. Raises `InputError` naming the
    meters whose readings switch interval length (a run of `MIXED_RUN` equal steps other than
    the meter's own between consecutive readings) and, without ``step_min``,
    those with a single reading.
    """
    frame = parsed[["customer_id", "timestamp"]].sort_values(["customer_id", "timestamp"],
                                                            kind="stable")
    cid = frame["customer_id"].to_numpy()
    diff = frame.groupby("customer_id", sort=False)["timestamp"].diff().to_numpy()
    positive = ~np.isnat(diff) & (diff > np.timedelta64(0))
    counts = (pd.DataFrame({"customer_id": cid[positive], "diff": diff[positive]})
              .groupby(["customer_id", "diff"]).size())
    # Most common step per meter; ties go to the shortest (groupby sorts steps ascending).
    own = counts.groupby(level=0).idxmax()
    steps = {str(c): pd.Timedelta(d) for c, d in own}
    single = sorted(set(map(str, cid)) - set(steps))
    if single and step_min is not None:
        steps.update({c: pd.Timedelta(minutes=step_min) for c in single})
        single = []
    own_step = pd.Series({c: s.to_timedelta64() for c, s in steps.items()}, dtype="m8[ns]")
    other = positive & (diff != own_step.reindex(cid).to_numpy())
    # A run of equal other steps: each such step equal to the previous one of the same meter
    # (a gap gives one longer step between regular ones, never a run).
    same = np.zeros(len(diff), dtype=bool)
    same[1:] = other[1:] & other[:-1] & (diff[1:] == diff[:-1]) & (cid[1:] == cid[:-1])
    mixed: list[str] = []
    for start, stop in _runs(same):
        if stop - start + 1 >= MIXED_RUN:
            name = str(cid[start])
            if not mixed or not mixed[-1].startswith(f"{name} ("):
                mixed.append(f"{name} ({_minutes(steps[name])} and "
                             f"{_minutes(pd.Timedelta(diff[start]))} min)")
    if mixed:
        raise InputError(f"meter data: {len(mixed)} meter(s) switch interval length within their "
                         f"own readings: {_listed(mixed)}; give each interval its own meter ID")
    if single:
        raise InputError("meter data: cannot infer the interval length of meter(s) with a single "
                         f"reading: {_listed(single)} (give --step-min)")
    return steps


def _listed(names: list[str], most: int = 10) -> str:
    extra = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + extra


def _minutes(step: pd.Timedelta) -> str:
    return f"{step / pd.Timedelta(minutes=1):g}"


def _screen_customer(rows: pd.DataFrame, step: pd.Timedelta, config: ScreeningConfig,
                     counts: dict[str, int]) -> tuple[pd.DataFrame, dict]:
    rows = rows.sort_values("timestamp", kind="stable")
    counts["rows"] = len(rows) + counts["bad_rows"]
    transitions = _transitions(rows["timestamp"].min().year, rows["timestamp"].max().year,
                               config.tz)
    ts = rows["timestamp"].to_numpy()
    values = rows["kwh"].to_numpy()

    # A clock without DST reports readings inside the hour local clocks skip in spring: its
    # summer stamps are an hour behind local time.
    for spring, fall in transitions:
        if spring is None or fall is None:
            continue
        hole = _hour_at(spring, ts)
        if hole.any():
            summer = (ts >= _stamp(spring, 2)) & (ts < _stamp(fall, 2))
            ts = ts + np.where(summer, np.timedelta64(1, "h"), np.timedelta64(0, "h"))
            counts["dst_clock_corrected"] += int(summer.sum())
    order = np.argsort(ts, kind="stable")
    ts, values = ts[order], values[order]

    # Repeated stamps: the autumn repeated hour is expected (merged), other repeats are faults.
    frame = pd.DataFrame({"timestamp": ts, "kwh": values})
    repeated_hour = np.zeros(len(frame), dtype=bool)
    for _, fall in transitions:
        if fall is not None:
            repeated_hour |= _hour_at(fall, ts)
    dup = frame.duplicated("timestamp", keep=False)
    dst_dup = dup & repeated_hour
    if dst_dup.any():
        counts["dst_merged"] = int(dst_dup.sum() - frame.loc[dst_dup, "timestamp"].nunique())
    other = frame[~dst_dup]
    exact = other.duplicated(["timestamp", "kwh"], keep="first")
    conflicting = other.duplicated("timestamp", keep="first") & ~exact
    counts["duplicates"] = int(exact.sum())
    counts["conflicting_duplicates"] = int(conflicting.sum())
    kept = pd.concat([
        other[~other.duplicated("timestamp", keep="first")],
        frame[dst_dup].groupby("timestamp", as_index=False)["kwh"].mean(),
    ]).sort_values("timestamp")

    grid = pd.date_range(kept["timestamp"].iloc[0], kept["timestamp"].iloc[-1], freq=step)
    series = kept.set_index("timestamp")["kwh"].reindex(grid)
    off_grid = len(kept) - int(kept["timestamp"].isin(grid).sum())
    counts["bad_rows"] += off_grid
    v = series.to_numpy(dtype=np.float64).copy()
    missing = np.isnan(v)

    # DST: the skipped spring hour is on the naive grid but no local meter can read it.
    dst_hole = np.zeros(len(grid), dtype=bool)
    for spring, _ in transitions:
        if spring is not None:
            dst_hole |= _hour_at(spring, grid.to_numpy()) & missing
    counts["dst_filled"] = int(dst_hole.sum())

    step_h = step / pd.Timedelta(hours=1)
    negative = v < 0
    impossible = v > config.max_kw * step_h
    counts["negative"] = int(negative.sum())
    counts["impossible"] = int(impossible.sum())
    v[negative | impossible] = np.nan
    stuck = _stuck(v, config.stuck_steps)
    counts["stuck_steps"] = int(stuck.sum())
    v[stuck] = np.nan
    spikes = _spikes(v, config)
    counts["spikes"] = int(spikes.sum())
    v[spikes] = np.nan

    # Gaps: interpolate short runs (and the DST hole), leave long ones.
    holes = np.isnan(v)
    counts["missing_steps"] = int((missing & ~dst_hole).sum())
    flag = np.full(len(v), "ok", dtype=object)
    filled = v.copy()
    for start, stop in _runs(holes):
        length = stop - start
        short = length <= config.max_repair_steps or dst_hole[start:stop].all()
        inside = start > 0 and stop < len(v)
        if short and inside:
            filled[start:stop] = np.interp(np.arange(start, stop), [start - 1, stop],
                                           [v[start - 1], v[stop]])
            flag[start:stop] = "repaired"
            counts["repaired_steps"] += length - int(dst_hole[start:stop].sum())
        else:
            flag[start:stop] = "gap"
            counts["long_gaps"] += 1
            counts["long_gap_steps"] += length
    completeness = 100.0 * (1.0 - counts["long_gap_steps"] / max(len(v), 1))
    faults = sum(counts[name] for name in REPORT_COUNTS
                 if name not in ("rows", "tz_converted", "dst_filled", "dst_merged"))
    status = "incomplete" if counts["long_gaps"] else ("repaired" if faults else "ok")
    info = {"first": grid[0], "last": grid[-1], "step_min": step / pd.Timedelta(minutes=1),
            "completeness_pct": completeness, "status": status}
    clean = pd.DataFrame({"timestamp": grid.to_numpy(), "kwh": filled, "flag": flag.astype(str)})
    return clean, info


@functools.lru_cache(maxsize=64)
def _transitions(first_year: int, last_year: int, tz: str) -> tuple:
    """DST transition days of the years (the same for every meter of a file: computed once)."""
    return tuple(dst_transition_days(y, tz) for y in range(first_year, last_year + 1))


def _stamp(day, hour: int) -> np.datetime64:
    return np.datetime64(pd.Timestamp(day) + pd.Timedelta(hours=hour), "ns")


def _hour_at(day, ts: np.ndarray) -> np.ndarray:
    """Stamps inside 02:00–03:00 local on ``day`` (the DST transition hour in Europe)."""
    return (ts >= _stamp(day, 2)) & (ts < _stamp(day, 3))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges of the True runs of ``mask``."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2], edges[1::2], strict=True))


def _stuck(v: np.ndarray, min_steps: int) -> np.ndarray:
    out = np.zeros(len(v), dtype=bool)
    same = np.concatenate([[False], (v[1:] == v[:-1]) & (v[1:] != 0)])
    for start, stop in _runs(same):
        if stop - start + 1 >= min_steps:
            out[start - 1 : stop] = True
    return out


def _spikes(v: np.ndarray, config: ScreeningConfig) -> np.ndarray:
    finite = v[np.isfinite(v)]
    if len(finite) < 10:
        return np.zeros(len(v), dtype=bool)
    level = config.spike_level * max(np.quantile(finite, 0.995), 1e-9)
    prev = np.concatenate([[np.nan], v[:-1]])
    nxt = np.concatenate([v[1:], [np.nan]])
    neighbours = np.fmax(prev, nxt)
    with np.errstate(invalid="ignore"):
        return ((v > level)
                & (v > config.spike_ratio * np.nan_to_num(neighbours, nan=np.inf)))
