"""Forecast weather: what a planner would have been told, not the simulated truth.

A forecast issued at origin ``o`` for a step at lead time ``L`` [h] is the true weather plus an
error whose spread grows with lead time:

- temperature: ``T_f = T + σ_T(L) · x(L)``, ``σ_T(L) = σ_T0 + g_T · L / 24`` with ``x`` a
  unit-variance AR(1) process over lead time (time constant `TEMPERATURE_TAU_H`), so an error
  persists over hours as a mis-forecast front does;
- generation of the net's own generators (wind, PV, … on their profiles):
  ``P_f = clip(P + σ_P(L) · C · 2√(p(1 − p)) · z(L), 0, C)`` with ``C`` the capacity,
  ``p = P / C`` and ``σ_P`` a share of it
  (day-ahead wind power errors are ≈ 10 % of capacity, Giebel et al. 2011, "The state-of-the-art
  in short-term prediction of wind power", ANEMOS.plus);
- irradiance: on the clear-sky index ``k = GHI / GHI_clear`` (Kasten & Czeplak 1980 form used in
  `sim.weather`), ``k_f = clip(k + σ_I(L) · y(L), 0, 1)`` and ``GHI_f = k_f · GHI_clear``.

The defaults follow the order of magnitude of operational centres' 2-m temperature verification
over Europe (RMSE ≈ 1.5 K at day 1 rising to ≈ 3 K at day 7; ECMWF, "Evaluation of ECMWF
forecasts", Haiden et al. 2021, Tech. Memo 880) and a clear-sky-index error of ≈ 0.2 a day ahead
(Lorenz et al. 2009, "Irradiance forecasting for the power prediction of grid-connected PV").

Every forecast is drawn from a random stream keyed by (seed, origin time), so the forecast a
day receives does not depend on which window is simulated or on anything after its origin
other than the truth of the forecast steps themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TEMPERATURE_TAU_H = 12.0
IRRADIANCE_TAU_H = 4.0
GENERATION_TAU_H = 6.0
_STREAM = 0xF0CA57
_GENERATION_STREAM = 0x6E4E

DAILY_WEATHER = ("temperature_mean_c", "temperature_max_c", "temperature_min_c",
                 "temperature_evening_c", "ghi_mean_w_m2")
"""Daily aggregates of the (forecast or observed) weather the peak forecaster uses."""


@dataclass(frozen=True)
class WeatherForecastError:
    """Spread of the forecast error and how it grows with lead time."""

    temperature_sd_k: float = 1.2              # at lead 0 [K]
    temperature_growth_k_per_day: float = 0.28  # added per day of lead [K/day]
    clear_sky_index_sd: float = 0.15           # at lead 0 [-]
    clear_sky_index_growth_per_day: float = 0.03  # [1/day]
    generation_sd: float = 0.08                # share of capacity at lead 0 [-]
    generation_growth_per_day: float = 0.02    # [1/day]

    def generation_sd_share(self, lead_h: np.ndarray) -> np.ndarray:
        """σ of generation as a share of capacity at lead ``lead_h`` [h] → [-]."""
        return self.generation_sd + self.generation_growth_per_day * np.asarray(lead_h) / 24.0

    def temperature_sd(self, lead_h: np.ndarray) -> np.ndarray:
        """σ_T at lead ``lead_h`` [h] → [K]."""
        return self.temperature_sd_k + self.temperature_growth_k_per_day * np.asarray(lead_h) / 24.0

    def irradiance_sd(self, lead_h: np.ndarray) -> np.ndarray:
        """σ of the clear-sky index at lead ``lead_h`` [h] → [-]."""
        return (self.clear_sky_index_sd
                + self.clear_sky_index_growth_per_day * np.asarray(lead_h) / 24.0)


def _ar1_unit(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    z = rng.standard_normal(n)
    x = np.empty(n)
    if n:
        x[0] = z[0]
    scale = np.sqrt(1.0 - phi * phi)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + scale * z[i]
    return x


def issue_forecast(
    time: pd.DatetimeIndex, temperature_c: np.ndarray, ghi_w_m2: np.ndarray,
    clear_ghi_w_m2: np.ndarray, origin: pd.Timestamp, *, seed: int,
    error: WeatherForecastError = WeatherForecastError(),
) -> tuple[np.ndarray, np.ndarray]:
    """Forecast temperature [°C] and GHI [W/m2] issued at ``origin`` for the steps ``time``.

    Parameters
    ----------
    time
        Naive local start times of the forecast steps, all at or after ``origin`` (regular).
    temperature_c, ghi_w_m2, clear_ghi_w_m2
        The true weather and the clear-sky GHI on those steps.
    origin
        Issue time; keys the random stream together with ``seed``.
    """
    time = pd.DatetimeIndex(time)
    if len(time) == 0:
        return np.empty(0), np.empty(0)
    step_h = (time[1] - time[0]) / pd.Timedelta(hours=1) if len(time) > 1 else 1.0
    lead_h = np.asarray((time - origin) / pd.Timedelta(hours=1), dtype=np.float64) + 0.5 * step_h
    if lead_h.min() < 0:
        raise ValueError("forecast steps must not precede the origin")
    origin_min = int(pd.Timestamp(origin).value // 60_000_000_000)
    rng = np.random.default_rng([seed % 2**63, _STREAM, origin_min % 2**63])
    x = _ar1_unit(rng, len(time), float(np.exp(-step_h / TEMPERATURE_TAU_H)))
    y = _ar1_unit(rng, len(time), float(np.exp(-step_h / IRRADIANCE_TAU_H)))
    temperature = np.asarray(temperature_c, dtype=np.float64) + error.temperature_sd(lead_h) * x
    clear = np.asarray(clear_ghi_w_m2, dtype=np.float64)
    up = clear > 1.0
    index = np.where(up, np.asarray(ghi_w_m2, dtype=np.float64) / np.where(up, clear, 1.0), 0.0)
    index_f = np.clip(index + error.irradiance_sd(lead_h) * y, 0.0, 1.0)
    return temperature, np.where(up, index_f * clear, 0.0)


def daily_weather(time: pd.DatetimeIndex, temperature_c: np.ndarray,
                  ghi_w_m2: np.ndarray) -> np.ndarray:
    """`DAILY_WEATHER` aggregates of each calendar day in ``time`` → ``[day, feature]``."""
    frame = pd.DataFrame({"t": temperature_c, "g": ghi_w_m2}, index=pd.DatetimeIndex(time))
    day = frame.index.normalize()
    grouped = frame.groupby(day)
    hour = frame.index.hour
    evening = frame["t"].where((hour >= 17) & (hour < 21)).groupby(day).mean()
    return np.column_stack([
        grouped["t"].mean().to_numpy(), grouped["t"].max().to_numpy(), grouped["t"].min().to_numpy(),
        evening.fillna(grouped["t"].mean()).to_numpy(), grouped["g"].mean().to_numpy(),
    ])


def daily_forecast_weather(
    time: pd.DatetimeIndex, temperature_c: np.ndarray, ghi_w_m2: np.ndarray,
    clear_ghi_w_m2: np.ndarray, *, lead_days: int, seed: int,
    error: WeatherForecastError = WeatherForecastError(),
) -> np.ndarray:
    """Daily forecast weather of every day at every lead: ``[lead − 1, day, DAILY_WEATHER]``.

    Entry ``[k − 1, j]`` aggregates the forecast issued at midnight starting day ``j − k + 1``
    (the origin: everything before it is observed) for day ``j``; NaN where that origin would
    precede the series.
    """
    time = pd.DatetimeIndex(time)
    day_of_step = time.normalize()
    days = day_of_step.unique()
    bounds = np.searchsorted(day_of_step.asi8, days.asi8)
    bounds = np.append(bounds, len(time))
    out = np.full((lead_days, len(days), len(DAILY_WEATHER)), np.nan)
    for o, origin in enumerate(days):
        stop_day = min(o + lead_days, len(days))
        sl = slice(bounds[o], bounds[stop_day])
        temperature, ghi = issue_forecast(time[sl], temperature_c[sl], ghi_w_m2[sl],
                                          clear_ghi_w_m2[sl], origin, seed=seed, error=error)
        daily = daily_weather(time[sl], temperature, ghi)
        for k in range(stop_day - o):
            out[k, o + k] = daily[k]
    return out


def _day_bounds(time: pd.DatetimeIndex) -> tuple[pd.DatetimeIndex, np.ndarray]:
    day_of_step = time.normalize()
    days = day_of_step.unique()
    bounds = np.searchsorted(day_of_step.asi8, days.asi8)
    return days, np.append(bounds, len(time))


def forecast_generation(
    time: pd.DatetimeIndex, generation_kw: np.ndarray, capacity_kw: float, *, lead_days: int,
    seed: int, error: WeatherForecastError = WeatherForecastError(),
) -> np.ndarray:
    """Forecast generation ``[lead − 1, time]`` [kW]: step ``t`` at lead ``k`` days is the
    forecast issued at midnight starting day(t) − k + 1 (NaN where that precedes the series)."""
    time = pd.DatetimeIndex(time)
    generation_kw = np.asarray(generation_kw, dtype=np.float64)
    out = np.full((lead_days, len(time)), np.nan)
    capacity_kw = max(float(capacity_kw), 0.0)
    days, bounds = _day_bounds(time)
    step_h = (time[1] - time[0]) / pd.Timedelta(hours=1) if len(time) > 1 else 1.0
    phi = float(np.exp(-step_h / GENERATION_TAU_H))
    for o, origin in enumerate(days):
        stop_day = min(o + lead_days, len(days))
        sl = slice(bounds[o], bounds[stop_day])
        lead_h = np.asarray((time[sl] - origin) / pd.Timedelta(hours=1)) + 0.5 * step_h
        origin_min = int(origin.value // 60_000_000_000)
        rng = np.random.default_rng([seed % 2**63, _GENERATION_STREAM, origin_min % 2**63])
        z = _ar1_unit(rng, len(lead_h), phi)
        # Errors vanish where output is pinned at 0 or at capacity and are largest mid-curve
        # (Lange 2005, "On the uncertainty of wind power predictions", J. Sol. Energy Eng. 127).
        share = np.clip(generation_kw[sl] / capacity_kw, 0.0, 1.0) if capacity_kw > 0 else 0.0
        spread = error.generation_sd_share(lead_h) * capacity_kw * 2.0 * np.sqrt(share * (1 - share))
        forecast = np.clip(generation_kw[sl] + spread * z, 0.0, capacity_kw)
        for k in range(stop_day - o):
            part = slice(bounds[o + k], bounds[o + k + 1])
            out[k, part] = forecast[part.start - sl.start: part.stop - sl.start]
    return out
