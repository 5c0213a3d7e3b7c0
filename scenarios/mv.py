"""Measurement & verification of demand-response events from meter data (`gridflex mv`).

What a real event delivered is the customer's baseline — the load it would have drawn — minus
what the meter read. Baselines (`sim.baseline`, each from earlier days only):

- ``10of10`` and ``10of10_adjusted``: mean of the last 10 non-event days of the same day type,
  the second with the capped (±20 %) same-day adjustment from the hours before the event
  (CAISO 10-in-10, "Baseline Accuracy Work Group Proposal", CAISO 2017);
- ``high4of5``: mean of the 4 days with the most energy in the event window among the last 5
  (the "high X of Y" family, PJM Manual 11 §10, NYISO CBL);
- ``regression``: per customer and step of the day on daily heating/cooling degree-days of
  the other non-event days (LBNL, Coughlin et al. 2008, LBNL-63728), when a weather file is
  given; ``regression_adjusted`` the same with the capped same-day adjustment.

Every baseline is scored on the non-event days of the events' day types, over the same window
as the events: relative RMSE of the window-mean load and bias. The baseline with the lowest
relative RMSE is chosen per customer (and window). Meters are handled at their own interval.

Events file: CSV with ``date`` (YYYY-MM-DD), ``start`` and ``end`` (local HH:MM; ``end`` may be
24:00) and optionally ``customer_id`` (the event applies to that meter only; absent or empty:
to every meter) and ``contracted_kw`` (the curtailment called [kW]; gives each result its
``delivered_share``). Every event day is left out of every meter's reference days.

Each result also carries ``rebound_kwh``: the energy drawn above the same baseline in the
``rebound_h`` hours after the event (the payback `customers.response_fit` fits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from customers.io import read_text_csv
from scenarios.errors import InputError
from sim.baseline import (
    EventWindow,
    adjust_same_day,
    average_x_of_y,
    customer_accuracy,
    weather_regression,
)

X_OF_Y: dict[str, dict] = {
    "10of10": {"x": 10, "y": 10, "highest": False, "adjust": False},
    "10of10_adjusted": {"x": 10, "y": 10, "highest": False, "adjust": True},
    "high4of5": {"x": 4, "y": 5, "highest": True, "adjust": False},
}


@dataclass(frozen=True)
class Event:
    """One event: its day, local window and the meter it applies to (None: every meter)."""

    date: pd.Timestamp
    start: pd.Timedelta
    end: pd.Timedelta
    customer_id: str | None
    line: int
    contracted_kw: float = float("nan")


@dataclass
class MVResult:
    """Delivered reduction per event, customer and baseline, and each baseline's accuracy."""

    events: pd.DataFrame
    accuracy: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def read_events(path: Path) -> list[Event]:
    """Read and check an events CSV (see the module docstring); errors name file, line, column."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"events file {path} not found")
    frame = read_text_csv(path)
    for column in ("date", "start", "end"):
        if column not in frame.columns:
            raise InputError(f"{path}, column '{column}': required column is missing")
    if frame.empty:
        raise InputError(f"{path}: no events")
    events = []
    for i, row in enumerate(frame.itertuples(index=False)):
        line = i + 2
        date = pd.to_datetime(str(row.date).strip(), errors="coerce", format="%Y-%m-%d")
        if pd.isna(date):
            raise InputError(f"{path}, line {line}, column 'date': '{row.date}' is not YYYY-MM-DD")
        start, end = (_time_of_day(path, line, name, str(getattr(row, name)))
                      for name in ("start", "end"))
        if end <= start:
            raise InputError(f"{path}, line {line}, column 'end': {row.end} is not after {row.start}")
        cid = str(getattr(row, "customer_id", "")).strip() or None
        contracted = float("nan")
        text = str(getattr(row, "contracted_kw", "")).strip()
        if text:
            contracted = pd.to_numeric(text, errors="coerce")
            if not np.isfinite(contracted) or contracted <= 0:
                raise InputError(f"{path}, line {line}, column 'contracted_kw': '{text}' is not a "
                                 "positive number")
        events.append(Event(date=date, start=start, end=end, customer_id=cid, line=line,
                            contracted_kw=float(contracted)))
    return events


def _time_of_day(path: Path, line: int, column: str, text: str) -> pd.Timedelta:
    parts = text.strip().split(":")
    ok = len(parts) == 2 and all(p.isdigit() for p in parts)
    value = pd.Timedelta(hours=int(parts[0]), minutes=int(parts[1])) if ok else None
    if value is None or not pd.Timedelta(0) <= value <= pd.Timedelta(hours=24) or int(parts[1]) > 59:
        raise InputError(f"{path}, line {line}, column '{column}': '{text}' is not a time HH:MM")
    return value


def measure_events(clean: pd.DataFrame, events: list[Event], *, events_path: Path,
                   temperature_c: pd.Series | None = None, country: str = "DE",
                   rebound_h: float = 2.0) -> MVResult:
    """Delivered reduction of every event for every meter it applies to, by every baseline.

    Parameters
    ----------
    clean
        Screened long frame (`sim.quality.screen_meter_data`): ``customer_id``, ``timestamp``,
        ``kwh`` (energy of the interval starting at the stamp) on each meter's regular grid.
    events
        From `read_events`.
    events_path
        Named in errors about events.
    temperature_c
        Outdoor temperature [°C] indexed by naive local time, for the regression baseline.
    country
        Public holidays for the day types.
    rebound_h
        Hours after each event over which the payback above the baseline is counted [h].
    """
    from sim.calendar import day_types_of_dates

    _check_events_in_data(clean, events, events_path)
    notes: list[str] = []
    event_rows, accuracy_rows = [], []
    for step, part in _groups(clean):
        spd = int(pd.Timedelta(days=1) / step)
        if pd.Timedelta(days=1) % step:
            notes.append(f"meters at {step} left out: the interval does not divide a day")
            continue
        days, ids, load = _day_matrix(part, step, spd)
        if len(days) < 2:
            notes.append(f"meters at {step} left out: less than two whole days of data")
            continue
        day_type = day_types_of_dates(days, country)
        event_day = np.asarray(days.isin(pd.DatetimeIndex([e.date for e in events])))
        temperature = _on_grid(temperature_c, days, step, spd) if temperature_c is not None else None
        for (start, end), group in _by_window(events).items():
            window = EventWindow(start=int(start / step), stop=int(np.ceil(end / step)))
            scored_types = {int(day_type[days.get_loc(e.date)]) for e in group if e.date in days}
            score_days = ~event_day & np.isin(day_type, list(scored_types))
            baselines = _baselines(load, spd, day_type, event_day, window, temperature)
            flat = load.reshape(load.shape[0], -1)
            scores = {name: customer_accuracy(flat, b, spd, score_days, window)
                      for name, b in baselines.items()}
            rrmse = np.stack([scores[n]["rrmse_pct"] for n in baselines])  # [baseline, customer]
            best = np.where(np.isfinite(rrmse).any(axis=0),
                            np.argmin(np.where(np.isfinite(rrmse), rrmse, np.inf), axis=0), -1)
            label = f"{_hhmm(start)}-{_hhmm(end)}"
            for b, name in enumerate(baselines):
                for c, cid in enumerate(ids):
                    accuracy_rows.append({
                        "customer_id": cid, "window": label, "baseline": name,
                        "bias_pct": scores[name]["bias_pct"][c],
                        "rrmse_pct": scores[name]["rrmse_pct"][c],
                        "days": int(scores[name]["days"][c]), "best": bool(best[c] == b)})
            for event in group:
                if event.date not in days:
                    continue
                d = days.get_loc(event.date)
                after = slice(window.stop, min(window.stop + int(round(rebound_h * spd / 24)), spd))
                step_h = step / pd.Timedelta(hours=1)
                for c, cid in enumerate(ids):
                    if event.customer_id is not None and event.customer_id != cid:
                        continue
                    actual = float(load[c, d, window.start:window.stop].mean())
                    for b, (name, baseline) in enumerate(baselines.items()):
                        base = float(baseline[c, d, window.start:window.stop].mean())
                        reduction = base - actual
                        payback = float((load[c, d, after] - baseline[c, d, after]).sum()) * step_h
                        event_rows.append({
                            "customer_id": cid, "date": str(event.date.date()), "window": label,
                            "baseline": name, "best": bool(best[c] == b),
                            "baseline_kw": base, "actual_kw": actual, "reduction_kw": reduction,
                            "reduction_kwh": reduction * (window.stop - window.start) * step_h,
                            "reduction_pct": reduction / base * 100.0 if base > 0 else np.nan,
                            "rebound_kwh": payback,
                            "contracted_kw": event.contracted_kw,
                            "delivered_share": reduction / event.contracted_kw,
                            "rrmse_pct": float(scores[name]["rrmse_pct"][c]),
                        })
    known = set(clean["customer_id"].unique())
    unscored = [e for e in events if e.customer_id is not None and e.customer_id not in known]
    if unscored:
        e = unscored[0]
        raise InputError(f"{events_path}, line {e.line}, column 'customer_id': meter "
                         f"'{e.customer_id}' has no readings")
    if temperature_c is None:
        notes.append("no weather file: the regression baseline is left out")
    result = MVResult(events=pd.DataFrame(event_rows), accuracy=pd.DataFrame(accuracy_rows),
                      notes=notes)
    if result.events.empty:
        raise InputError(f"{events_path}: no event could be measured (every meter needs whole "
                         "days of data around its events)")
    return result


def _hhmm(value: pd.Timedelta) -> str:
    minutes = int(value / pd.Timedelta(minutes=1))
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _check_events_in_data(clean: pd.DataFrame, events: list[Event], path: Path) -> None:
    first = clean["timestamp"].min().normalize()
    last = clean["timestamp"].max().normalize()
    for event in events:
        if not first <= event.date <= last:
            raise InputError(f"{path}, line {event.line}, column 'date': {event.date.date()} lies "
                             f"outside the meter data ({first.date()} to {last.date()})")


def _groups(clean: pd.DataFrame) -> list[tuple[pd.Timedelta, pd.DataFrame]]:
    frame = clean.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)
    step = frame.groupby("customer_id")["timestamp"].diff()
    own = step[step > pd.Timedelta(0)].groupby(frame["customer_id"]).min()
    frame["step"] = frame["customer_id"].map(own)
    return [(pd.Timedelta(s), p.drop(columns="step"))
            for s, p in frame.dropna(subset=["step"]).groupby("step", sort=True)]


def _day_matrix(part: pd.DataFrame, step: pd.Timedelta, spd: int
                ) -> tuple[pd.DatetimeIndex, list[str], np.ndarray]:
    """Mean power [customer, day, step of day] [kW] over the whole days of the group."""
    first = part["timestamp"].min().ceil("D")
    end = (part["timestamp"].max() + step).floor("D")
    grid = pd.date_range(first, end, freq=step, inclusive="left")
    wide = part.pivot(index="timestamp", columns="customer_id", values="kwh").reindex(grid)
    kw = wide.to_numpy(dtype=np.float64).T / (step / pd.Timedelta(hours=1))
    days = pd.date_range(first, end, freq="D", inclusive="left")
    return days, [str(c) for c in wide.columns], kw.reshape(kw.shape[0], len(days), spd)


def _on_grid(temperature: pd.Series, days: pd.DatetimeIndex, step: pd.Timedelta,
             spd: int) -> np.ndarray:
    grid = pd.date_range(days[0], periods=len(days) * spd, freq=step)
    series = temperature.sort_index()
    return np.interp(grid.asi8.astype(float), series.index.asi8.astype(float),
                     series.to_numpy(dtype=float))


def _by_window(events: list[Event]) -> dict[tuple[pd.Timedelta, pd.Timedelta], list[Event]]:
    out: dict[tuple[pd.Timedelta, pd.Timedelta], list[Event]] = {}
    for event in events:
        out.setdefault((event.start, event.end), []).append(event)
    return out


def _baselines(load: np.ndarray, spd: int, day_type: np.ndarray, event_day: np.ndarray,
               window: EventWindow, temperature: np.ndarray | None) -> dict[str, np.ndarray]:
    """Every baseline of every day [customer, day, step], each from days of the same type."""
    flat = load.reshape(load.shape[0], -1)
    out: dict[str, np.ndarray] = {}
    for name, options in X_OF_Y.items():
        combined = np.full(load.shape, np.nan)
        for kind in np.unique(day_type):
            same = day_type == kind
            baseline = average_x_of_y(flat, spd, same, event_day, window, **options)
            combined[:, same] = baseline[:, same]
        out[name] = combined
    if temperature is not None:
        combined = np.full(load.shape, np.nan)
        for kind in np.unique(day_type):
            same = day_type == kind
            baseline = weather_regression(flat, spd, temperature, same, event_day)
            combined[:, same] = baseline[:, same]
        out["regression"] = combined
        out["regression_adjusted"] = adjust_same_day(flat, combined, spd, window)
    return out
