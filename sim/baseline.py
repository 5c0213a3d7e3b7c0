"""Customer baseline load (CBL) for measurement & verification of demand response.

Pure array functions over ``load[customer, time]`` on whole days (``steps_per_day`` steps each),
with boolean day masks. A baseline is computed for every day from *earlier* days only, so it can
be scored on non-event days exactly as it would be used on event days:

- `average_x_of_y` — mean of the last ``y`` eligible non-event days (X = Y = 10: CAISO 10-in-10,
  "Baseline Accuracy Work Group Proposal", CAISO 2017), with an optional capped multiplicative
  day-of adjustment from the hours before the event window (±20 % by default);
- the same with ``highest=True`` — the ``x`` days of the last ``y`` with the most energy in the
  event window (NYISO/PJM "high 5 of 10", PJM Manual 11 §10);
- `weather_regression` — per customer and step of the day, least squares on daily heating and
  cooling degree-days over non-event days (the "regression" CBL of LBNL, Coughlin et al. 2008,
  "Estimating Demand Response Load Impacts", LBNL-63728).

`baseline_accuracy` reports bias and error over the event window of non-event days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EventWindow:
    """Event hours as step-of-day indices ``[start, stop)`` and the adjustment lead."""

    start: int
    stop: int
    adjustment_steps: int = 12   # length of the day-of adjustment window before the buffer
    buffer_steps: int = 4        # steps right before the event left out (pre-cooling etc.)
    cap: float = 0.2             # day-of adjustment limited to ±cap [-]


def by_day(load: np.ndarray, steps_per_day: int) -> np.ndarray:
    """``[customer, time]`` → ``[customer, day, step of day]`` (whole days only)."""
    load = np.asarray(load, dtype=float)
    days = load.shape[1] // steps_per_day
    if days * steps_per_day != load.shape[1]:
        raise ValueError("load must cover whole days")
    return load.reshape(load.shape[0], days, steps_per_day)


def average_x_of_y(
    load: np.ndarray, steps_per_day: int, eligible: np.ndarray, event: np.ndarray,
    window: EventWindow, *, x: int = 10, y: int = 10, highest: bool = False,
    adjust: bool = True,
) -> np.ndarray:
    """X-of-Y baseline of every day, ``[customer, day, step]`` [kW] (NaN without history).

    Parameters
    ----------
    eligible
        ``[day]`` days of the same kind as the target (e.g. non-holiday weekdays).
    event
        ``[day]`` event days; never used as reference days.
    highest
        Average the ``x`` reference days with the most energy in the window (else the ``x``
        most recent of the last ``y``).
    adjust
        Apply the capped multiplicative day-of adjustment.
    """
    days = by_day(load, steps_per_day)
    n, n_days, _ = days.shape
    eligible = np.asarray(eligible, dtype=bool)
    event = np.asarray(event, dtype=bool)
    reference_ok = eligible & ~event
    out = np.full(days.shape, np.nan)
    window_slots = slice(window.start, window.stop)
    adj_stop = max(window.start - window.buffer_steps, 0)
    adj_slots = slice(max(adj_stop - window.adjustment_steps, 0), adj_stop)
    for d in range(n_days):
        previous = np.flatnonzero(reference_ok[:d])[::-1][:y]
        if len(previous) < min(x, y):
            continue
        reference = days[:, previous, :]
        if highest:
            energy = reference[:, :, window_slots].sum(axis=2)
            top = np.argsort(-energy, axis=1, kind="stable")[:, :x]
            chosen = np.take_along_axis(reference, top[:, :, None], axis=1)
        else:
            chosen = reference[:, :x, :]
        baseline = chosen.mean(axis=1)
        if adjust and adj_slots.stop > adj_slots.start:
            actual = days[:, d, adj_slots].mean(axis=1)
            expected = baseline[:, adj_slots].mean(axis=1)
            ratio = np.divide(actual, expected, out=np.ones(n), where=expected > 0)
            baseline = baseline * np.clip(ratio, 1.0 - window.cap, 1.0 + window.cap)[:, None]
        out[:, d, :] = baseline
    return out


def daily_degree_days(temperature_c: np.ndarray, steps_per_day: int, *, heating_base_c: float = 15.5,
                      cooling_base_c: float = 22.0) -> tuple[np.ndarray, np.ndarray]:
    """Heating and cooling degree-days of each day from the daily mean temperature [K·d]."""
    mean = np.asarray(temperature_c, dtype=float).reshape(-1, steps_per_day).mean(axis=1)
    return np.maximum(heating_base_c - mean, 0.0), np.maximum(mean - cooling_base_c, 0.0)


def weather_regression(
    load: np.ndarray, steps_per_day: int, temperature_c: np.ndarray, eligible: np.ndarray,
    event: np.ndarray,
) -> np.ndarray:
    """Regression baseline of every day, ``[customer, day, step]`` [kW].

    For each customer and step of the day: ``load = b0 + b1·HDD + b2·CDD`` fitted by least
    squares on eligible non-event days *other than the target day* (leave-one-out, so that
    non-event days are scored out of sample).
    """
    days = by_day(load, steps_per_day)
    n, n_days, slots = days.shape
    hdd, cdd = daily_degree_days(temperature_c, steps_per_day)
    design = np.column_stack([np.ones(n_days), hdd, cdd])
    train = np.asarray(eligible, dtype=bool) & ~np.asarray(event, dtype=bool)
    out = np.full(days.shape, np.nan)
    y_all = days.transpose(1, 0, 2).reshape(n_days, n * slots)
    for d in range(n_days):
        rows = train.copy()
        rows[d] = False
        if rows.sum() < design.shape[1] + 2:
            continue
        coef, *_ = np.linalg.lstsq(design[rows], y_all[rows], rcond=None)
        out[:, d, :] = (design[d] @ coef).reshape(n, slots)
    return out


def baseline_accuracy(
    load: np.ndarray, baseline: np.ndarray, steps_per_day: int, days_mask: np.ndarray,
    window: EventWindow,
) -> dict[str, float]:
    """Bias and error of a baseline over the event window of the masked days (all customers).

    Returns ``bias_pct`` (Σ(baseline − actual) / Σ actual), ``wape_pct`` (Σ|…| / Σ actual) and
    ``cv_rmse_pct`` (RMSE of the customers' summed window load / its mean), and ``days`` scored.
    """
    actual = by_day(load, steps_per_day)[:, :, window.start:window.stop]
    base = baseline[:, :, window.start:window.stop]
    mask = np.asarray(days_mask, dtype=bool) & np.isfinite(base).all(axis=(0, 2))
    if not mask.any():
        return {"bias_pct": np.nan, "wape_pct": np.nan, "cv_rmse_pct": np.nan, "days": 0}
    a, b = actual[:, mask], base[:, mask]
    total_a, total_b = a.sum(axis=0), b.sum(axis=0)  # [day, step] summed over customers
    return {
        "bias_pct": float((b - a).sum() / a.sum() * 100.0),
        "wape_pct": float(np.abs(b - a).sum() / np.abs(a).sum() * 100.0),
        "cv_rmse_pct": float(np.sqrt(((total_b - total_a) ** 2).mean()) / total_a.mean() * 100.0),
        "days": int(mask.sum()),
    }


def estimated_reduction_kw(load: np.ndarray, baseline: np.ndarray, steps_per_day: int,
                           event: np.ndarray, window: EventWindow) -> np.ndarray:
    """Mean load reduction in the window of each event day, summed over customers [kW]."""
    actual = by_day(load, steps_per_day)[:, :, window.start:window.stop]
    base = baseline[:, :, window.start:window.stop]
    event = np.asarray(event, dtype=bool)
    return (base[:, event] - actual[:, event]).sum(axis=0).mean(axis=1)


def customer_accuracy(
    load: np.ndarray, baseline: np.ndarray, steps_per_day: int, days_mask: np.ndarray,
    window: EventWindow,
) -> dict[str, np.ndarray]:
    """Each customer's baseline accuracy over the event window of the masked days.

    Returns ``bias_pct`` (Σ(baseline − actual) / Σ actual), ``rrmse_pct`` (RMSE of the
    window-mean load over days / mean window load: the relative RMSE of the CAISO and LBNL
    accuracy tests) and ``days`` scored, each ``[customer]``; NaN where nothing can be scored.
    """
    actual = by_day(load, steps_per_day)[:, :, window.start:window.stop].mean(axis=2)
    base = baseline[:, :, window.start:window.stop].mean(axis=2)
    mask = np.asarray(days_mask, dtype=bool)[None, :] & np.isfinite(base) & np.isfinite(actual)
    days = mask.sum(axis=1)
    a = np.where(mask, actual, 0.0)
    b = np.where(mask, base, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_actual = a.sum(axis=1) / days
        bias = (b - a).sum(axis=1) / a.sum(axis=1) * 100.0
        rrmse = np.sqrt(((b - a) ** 2).sum(axis=1) / days) / mean_actual * 100.0
    none = (days == 0) | ~(mean_actual > 0)
    return {"bias_pct": np.where(none, np.nan, bias), "rrmse_pct": np.where(none, np.nan, rrmse),
            "days": days}


def adjust_same_day(load: np.ndarray, baseline: np.ndarray, steps_per_day: int,
                    window: EventWindow) -> np.ndarray:
    """A baseline ``[customer, day, step]`` scaled by the capped same-day adjustment.

    The ratio of actual to baseline load over the adjustment hours before the event window
    (the `EventWindow` buffer left out), clipped to ``1 ± cap`` — the same rule
    `average_x_of_y` applies, for any baseline (e.g. a weather regression).
    """
    days = by_day(load, steps_per_day)
    adj_stop = max(window.start - window.buffer_steps, 0)
    adj = slice(max(adj_stop - window.adjustment_steps, 0), adj_stop)
    if adj.stop <= adj.start:
        return baseline.copy()
    actual = days[:, :, adj].mean(axis=2)
    expected = baseline[:, :, adj].mean(axis=2)
    ok = np.isfinite(expected) & (expected > 0)
    ratio = np.divide(actual, expected, out=np.ones_like(actual), where=ok)
    return baseline * np.clip(ratio, 1.0 - window.cap, 1.0 + window.cap)[:, :, None]
