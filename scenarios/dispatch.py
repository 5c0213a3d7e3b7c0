"""Season-long event calls: which days the utility calls each curtailment contract.

No foresight: on day ``d`` the utility knows the day-ahead forecast of day ``d``'s feeder peak
and the forecasts it issued before (for a history before the window and the window's days
before ``d``), nothing later. The rule (`call_days`), readable and changed through
``[dispatch]``:

    call contract c on day d  ⇔  events left k > 0  and  forecast(d) ≥ threshold(d)
    threshold(d) = quantile at level 1 − k/n of the forecasts issued so far,  n = season days left

so a contract's ``max_events`` are paced over the season: with many days left only the highest
days get an event, as events run out the bar rises, and when the events left match the days left
every day is called. ``dispatch.threshold_kw`` replaces the paced threshold by a fixed one.
This is the simple readable form of the optimal-stopping rule for K events in N days (call when
the day is in the upper K/N of the season's forecast daily peaks; Bellman form in
/work/shared/SOLVER.md). Forecasts are compared with forecasts, so a forecaster's bias does not
move the share of days called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scenarios.errors import InputError
from scenarios.schema import CurtailmentContract, DispatchConfig


@dataclass(frozen=True)
class DispatchPlan:
    """Days each contract is called, and what the decision saw."""

    day: pd.DatetimeIndex     # [day] the window's days
    contract: tuple[str, ...]  # contract names, menu order
    called: np.ndarray        # [contract, day] bool
    threshold_kw: np.ndarray  # [contract, day] threshold the forecast was compared with [kW]
    forecast_kw: np.ndarray   # [day] forecast daily peak compared (dispatch.forecast) [kW]
    actual_kw: np.ndarray     # [day] actual daily peak [kW]
    p10_kw: np.ndarray        # [day] day-ahead forecast quantiles of the daily peak [kW]
    p50_kw: np.ndarray
    p90_kw: np.ndarray
    peak_hour: np.ndarray | None = None  # [day] forecast hour of the day's peak [h]

    def any_called(self) -> np.ndarray:
        """[day] bool: at least one contract called."""
        return self.called.any(axis=0) if self.called.size else np.zeros(len(self.day), bool)


@dataclass(frozen=True)
class WindowForecast:
    """Day-ahead forecasts of the window's daily peaks (lead 1), the fields the rule reads."""

    day: pd.DatetimeIndex
    p10_kw: np.ndarray
    p50_kw: np.ndarray
    p90_kw: np.ndarray
    actual_kw: np.ndarray
    peak_hour_forecast: np.ndarray   # [h] forecast hour of the day's peak


def window_forecast(table, window: np.ndarray) -> WindowForecast:
    """The lead-1 forecasts of the day positions ``window`` of a
    `sim.forecast.PeakForecastTable`."""
    return WindowForecast(
        day=pd.DatetimeIndex(table.day[window]), p10_kw=table.p10_kw[0, window].copy(),
        p50_kw=table.p50_kw[0, window].copy(), p90_kw=table.p90_kw[0, window].copy(),
        actual_kw=table.actual_kw[window].copy(),
        peak_hour_forecast=table.peak_hour_forecast[0, window].copy())


def seasonal_reference(history_day: pd.DatetimeIndex, history_kw: np.ndarray,
                       window_start: pd.Timestamp, season_days: float) -> np.ndarray:
    """Forecast daily peaks of the same season a year before the window [kW]: the history days
    from 365 days before the window's first day over ``season_days`` where a forecast was
    issued; all the history's forecasts when none of those was (a short history)."""
    start = pd.Timestamp(window_start) - pd.Timedelta(days=365)
    end = start + pd.Timedelta(days=float(season_days))
    values = np.asarray(history_kw, dtype=np.float64)
    keep = (history_day >= start) & (history_day < end) & np.isfinite(values)
    return values[keep] if keep.any() else values[np.isfinite(values)]


def reference_quantile(reference_kw: np.ndarray, level: float) -> float:
    """The smallest reference peak whose empirical CDF reaches ``level`` [kW] (inverted CDF):
    the ``⌈level·m⌉``-th smallest of ``m`` values, the smallest one for ``level ≤ 0``."""
    values = np.sort(np.asarray(reference_kw, dtype=np.float64))
    rank = math.ceil(level * len(values) - 1e-9)
    return float(values[min(max(rank, 1), len(values)) - 1])


def call_days(
    forecast_kw: np.ndarray,
    max_events: int,
    *,
    season_days: float,
    history_kw: np.ndarray | None = None,
    threshold_kw: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Days one contract is called over a window, deciding day by day.

    Parameters
    ----------
    forecast_kw
        ``[day]`` day-ahead forecast of each day's feeder peak [kW]; deciding day ``d`` reads
        ``forecast_kw[:d + 1]`` only.
    max_events
        Events the contract allows over the season.
    season_days
        Days the events must last; day ``d`` of the window has ``season_days − d`` left (≥ 1).
    history_kw
        Forecast daily peaks issued before the window [kW] (the reference the threshold starts
        from; NaN entries are ignored).
    threshold_kw
        Fixed threshold [kW]; ``None`` for the paced quantile.

    Returns
    -------
    (called [day] bool, threshold [day] [kW]; NaN where no reference existed yet: with no
    forecast seen so far a day is called only when the events left match the days left)
    """
    forecast = np.asarray(forecast_kw, dtype=np.float64)
    history = np.asarray(history_kw if history_kw is not None else [], dtype=np.float64)
    history = history[np.isfinite(history)]
    called = np.zeros(len(forecast), dtype=bool)
    threshold = np.full(len(forecast), np.nan)
    left = int(max_events)
    for d in range(len(forecast)):
        if left <= 0:
            threshold[d] = np.inf
            continue
        days_left = max(season_days - d, 1.0)
        if threshold_kw is not None:
            threshold[d] = threshold_kw
        else:
            past = forecast[:d]
            seen = np.concatenate([history, past[np.isfinite(past)]])
            if seen.size:
                threshold[d] = reference_quantile(seen, 1.0 - min(left / days_left, 1.0))
        if np.isnan(threshold[d]):
            call = left >= days_left
        else:
            call = bool(forecast[d] >= threshold[d])
        if call:
            called[d] = True
            left -= 1
    return called, threshold


def dispatch_events(
    forecast,
    contracts: list[CurtailmentContract],
    config: DispatchConfig,
    *,
    history_kw: np.ndarray | None = None,
) -> DispatchPlan:
    """Days each contract is called over the window (`call_days` per contract).

    Parameters
    ----------
    forecast
        Day-ahead forecasts of the feeder's daily peak with fields ``day`` (DatetimeIndex),
        ``p10_kw``, ``p50_kw``, ``p90_kw`` and ``actual_kw`` ``[day]`` [kW]
        (`sim.forecast.DailyPeakForecast`).
    contracts
        The menu's curtailment contracts.
    config
        The ``[dispatch]`` rule.
    history_kw
        Forecast daily peaks (of ``config.forecast``) issued before the window [kW].

    Raises
    ------
    InputError
        A fixed ``dispatch.threshold_kw`` above every forecast of the window while contracts
        are on the menu: no event would ever be called.
    """
    compared = np.asarray(getattr(forecast, f"{config.forecast}_kw"), dtype=np.float64)
    actual = np.asarray(forecast.actual_kw, dtype=np.float64)
    if (config.threshold_kw is not None and contracts
            and not (compared >= config.threshold_kw).any()):
        raise InputError(
            f"dispatch.threshold_kw: {config.threshold_kw:,.0f} kW is above every day's "
            f"{config.forecast} forecast peak (highest {np.nanmax(compared):,.0f} kW): no "
            "event would be called; lower it or remove it for the paced threshold"
        )
    called = np.zeros((len(contracts), len(compared)), dtype=bool)
    threshold = np.full((len(contracts), len(compared)), np.nan)
    for j, contract in enumerate(contracts):
        called[j], threshold[j] = call_days(
            compared, contract.max_events, season_days=config.season_days,
            history_kw=history_kw, threshold_kw=config.threshold_kw)
    return DispatchPlan(day=pd.DatetimeIndex(forecast.day), contract=tuple(c.name for c in contracts),
                        called=called, threshold_kw=threshold, forecast_kw=compared,
                        actual_kw=actual, p10_kw=np.asarray(forecast.p10_kw, dtype=np.float64),
                        p50_kw=np.asarray(forecast.p50_kw, dtype=np.float64),
                        p90_kw=np.asarray(forecast.p90_kw, dtype=np.float64),
                        peak_hour=(np.asarray(forecast.peak_hour_forecast, dtype=np.float64)
                                   if hasattr(forecast, "peak_hour_forecast") else None))


def event_steps(plan: DispatchPlan, contracts: list[CurtailmentContract], head_kw: pd.Series,
                step_h: float) -> np.ndarray:
    """``[contract, time]`` bool: each called day's central ``event_h`` around the day's peak.

    The event is centred on the day-ahead forecast of the hour of the day's peak
    (``plan.peak_hour``), or, where there is none, on the hour of the day's peak in
    ``head_kw``.
    """
    from customers.response import trim_events
    from scenarios.feeder import hours_from_daily_peak

    steps = np.zeros((len(contracts), len(head_kw)), dtype=bool)
    day_of_step = head_kw.index.normalize()
    for j, contract in enumerate(contracts):
        days = plan.day[plan.called[j]]
        if not len(days):
            continue
        hours = hours_from_daily_peak(head_kw, days)
        if plan.peak_hour is not None:
            forecast_hour = pd.Series(plan.peak_hour, index=plan.day)
            known = days[np.isfinite(forecast_hour.reindex(days).to_numpy())]
            on = np.asarray(day_of_step.isin(known))
            peak_at = day_of_step[on] + pd.to_timedelta(
                forecast_hour.reindex(day_of_step[on]).to_numpy(), unit="h")
            hours[on] = (head_kw.index[on] - peak_at) / pd.Timedelta(hours=1)
        with np.errstate(invalid="ignore"):
            window = np.abs(hours) < contract.event_h / 2.0 + step_h
        # The central event_h steps of a window slightly longer than the event (so that a
        # window with the peak at a step edge is not one step short).
        steps[j] = trim_events(window, max(1, round(contract.event_h / step_h)))
    return steps


def hit_rate(plan: DispatchPlan, top: int) -> float:
    """Share of the window's ``top`` highest actual-peak days on which an event was called."""
    top = max(1, min(int(top), len(plan.actual_kw)))
    order = np.argsort(-np.nan_to_num(plan.actual_kw, nan=-np.inf), kind="stable")[:top]
    return float(plan.any_called()[order].mean())
