"""Day-ahead load forecasting from calendar and temperature, and design-day selection.

A gradient-boosted tree regressor (scikit-learn ``HistGradientBoostingRegressor``, the
LightGBM-style histogram algorithm of Ke et al. 2017) maps calendar features (time of day, day
type, public holiday, season), temperature features (current, 24-h mean, heating and cooling
degrees) and load lags that are known a day ahead (same step two days and one week earlier) to
the load. Held-out days are predicted by models that never saw them (folds grouped by day), and
the error is reported as MAPE and bias (Hyndman & Koehler 2006, "Another look at measures of
forecast accuracy"). Weather is taken as perfectly forecast (the simulated weather itself).

`pick_design_days` chooses the optimizer's design days from these out-of-sample forecasts, so
the choice uses only information a planner would have the day before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scenarios.errors import InputError
from sim.calendar import day_types, hour_of_day
from sim.peak_forecast import (  # noqa: F401 — the daily-peak forecasts live next door
    DailyPeakForecast,
    PeakForecastConfig,
    PeakForecastTable,
    PeakMetrics,
    forecast_daily_peaks,
)

FEATURES = ("hour", "day_type", "weekday", "season_sin", "season_cos", "temperature_c",
            "temperature_24h_c", "heating_degree", "cooling_degree", "lag_2d", "lag_7d")


@dataclass(frozen=True)
class DayAheadForecast:
    """Out-of-sample forecast of a load series and its accuracy."""

    actual_kw: pd.Series
    forecast_kw: pd.Series
    mape_pct: float        # mean absolute percentage error over held-out steps [%]
    bias_pct: float        # (Σ forecast − Σ actual) / Σ actual [%]
    peak_error_pct: float  # mean error of the daily peaks [%]
    folds: int


def build_features(
    time: pd.DatetimeIndex, temperature_c: np.ndarray, load_kw: np.ndarray, country: str
) -> np.ndarray:
    """Feature matrix ``[time, FEATURES]`` (NaN where a lag reaches before the data)."""
    time = pd.DatetimeIndex(time)
    step = (time[1] - time[0]) if len(time) > 1 else pd.Timedelta(hours=1)
    per_day = int(round(pd.Timedelta(days=1) / step))
    temperature = np.asarray(temperature_c, dtype=float)
    mean_24h = pd.Series(temperature).rolling(per_day, min_periods=1).mean().to_numpy()
    doy = time.dayofyear.to_numpy(dtype=float)

    def lag(days: int) -> np.ndarray:
        out = np.full(len(time), np.nan)
        shift = days * per_day
        if shift < len(time):
            out[shift:] = load_kw[:-shift]
        return out

    return np.column_stack([
        hour_of_day(time), day_types(time, country).astype(float), time.weekday.to_numpy(float),
        np.sin(2 * np.pi * doy / 365.25), np.cos(2 * np.pi * doy / 365.25),
        temperature, mean_24h, np.maximum(15.5 - mean_24h, 0.0), np.maximum(mean_24h - 22.0, 0.0),
        lag(2), lag(7),
    ])


def _regressor(seed: int):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=150, learning_rate=0.1, max_leaf_nodes=31,
                                         min_samples_leaf=20, random_state=seed)


def _fit_predict(x_train, y_train, x_test, seed: int, threads: int) -> np.ndarray:
    # OpenMP/BLAS over-subscription on a shared machine cost ~5-30× here: cap the threads.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        return _regressor(seed).fit(x_train, y_train).predict(x_test)


def forecast_day_ahead(
    load_kw: pd.Series, temperature_c: pd.Series, *, country: str, folds: int = 5, seed: int = 0,
    threads: int = 1,
) -> DayAheadForecast:
    """Out-of-sample day-ahead forecast of one load series (a customer or a feeder).

    Parameters
    ----------
    load_kw
        Load on a regular naive-local time index [kW].
    temperature_c
        Outdoor temperature on the same index [°C].
    country
        Holiday calendar.
    folds
        Days are split into this many interleaved groups; each group is forecast by a model
        trained on the others (at least 2 days needed).
    threads
        OpenMP threads of the regressor.
    """
    time = pd.DatetimeIndex(load_kw.index)
    if len(time) < 2 or not temperature_c.index.equals(load_kw.index):
        raise InputError("forecast: load and temperature need the same regular time index")
    days = time.normalize()
    unique_days = days.unique()
    if len(unique_days) < 2:
        raise InputError("forecast: at least two days of data are needed")
    y = load_kw.to_numpy(dtype=float)
    x = build_features(time, temperature_c.to_numpy(dtype=float), y, country)
    folds = int(min(folds, len(unique_days)))
    day_number = unique_days.get_indexer(days)
    fold_of_step = day_number % folds
    prediction = np.empty(len(y))
    for fold in range(folds):
        test = fold_of_step == fold
        prediction[test] = _fit_predict(x[~test], y[~test], x[test], seed, threads)
    actual = pd.Series(y, index=time, name="actual_kw")
    forecast = pd.Series(prediction, index=time, name="forecast_kw")
    positive = np.abs(y) > 1e-9 * max(np.abs(y).max(), 1e-12)
    mape = float(np.mean(np.abs((prediction[positive] - y[positive]) / y[positive])) * 100.0)
    bias = float((prediction.sum() - y.sum()) / abs(y.sum()) * 100.0) if y.sum() else 0.0
    peaks_actual = actual.groupby(days).max()
    peaks_forecast = forecast.groupby(days).max()
    peak_error = float(((peaks_forecast - peaks_actual) / peaks_actual.abs()).mean() * 100.0)
    return DayAheadForecast(actual, forecast, mape, bias, peak_error, folds)


def pick_design_days(forecast: DayAheadForecast, count: int) -> list[pd.Timestamp]:
    """The ``count`` days with the highest forecast daily peak, in calendar order."""
    daily_peak = forecast.forecast_kw.groupby(forecast.forecast_kw.index.normalize()).max()
    if count < 1 or count > len(daily_peak):
        raise InputError(f"time.design_days: {count} days requested, {len(daily_peak)} simulated")
    return sorted(daily_peak.nlargest(count).index)


def forecast_customers(
    p_kw: np.ndarray, time: pd.DatetimeIndex, temperature_c: np.ndarray, *, country: str,
    folds: int = 5, seed: int = 0, threads: int = 1
) -> tuple[np.ndarray, pd.DataFrame]:
    """Out-of-sample day-ahead forecasts of many customers with one pooled model.

    Each customer's load is divided by its mean so that one model serves all (the customer's
    level is a feature too); predictions are scaled back.

    Returns
    -------
    forecast : ``[customer, time]`` [kW]
    accuracy : per customer ``wape_pct`` (Σ|error| / Σ|load|, robust where loads approach 0) and
        ``bias_pct`` [%].
    """
    p_kw = np.asarray(p_kw, dtype=float)
    n, n_steps = p_kw.shape
    time = pd.DatetimeIndex(time)
    level = np.abs(p_kw).mean(axis=1)
    level = np.where(level > 0, level, 1.0)
    scaled = p_kw / level[:, None]
    blocks = [np.column_stack([build_features(time, temperature_c, scaled[i], country),
                               np.full(n_steps, np.log(level[i]))]) for i in range(n)]
    x = np.vstack(blocks)
    y = scaled.ravel()
    day_number = np.tile(time.normalize().unique().get_indexer(time.normalize()), n)
    folds = int(min(folds, day_number.max() + 1))
    prediction = np.empty(len(y))
    for fold in range(folds):
        test = day_number % folds == fold
        prediction[test] = _fit_predict(x[~test], y[~test], x[test], seed, threads)
    forecast = prediction.reshape(n, n_steps) * level[:, None]
    error = forecast - p_kw
    accuracy = pd.DataFrame({
        "wape_pct": np.abs(error).sum(axis=1) / np.maximum(np.abs(p_kw).sum(axis=1), 1e-12) * 100,
        "bias_pct": error.sum(axis=1) / np.maximum(np.abs(p_kw.sum(axis=1)), 1e-12) * 100,
    })
    return forecast, accuracy
