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


# --- daily feeder peaks: rolling-origin day-ahead and week-ahead forecasts --------------------
#
# The peak a planner calls curtailment events on is forecast directly, one row per day, by
# gradient boosting on calendar, forecast-weather and load-lag features (the design of the
# GEFCom2014 winners: Hong et al. 2016, "Probabilistic energy forecasting", IJF 32). Quantiles
# come from the empirical distribution of the model's own recent out-of-sample errors
# (rolling split-conformal intervals, Vovk et al. 2005; Gibbs & Candès 2021), so the band is as
# wide as the forecaster has actually been wrong. Every number for day d is computed at an origin
# before d: the model, the error quantiles and the lags use only days before the origin.

PEAK_FEATURES = (
    "day_type", "weekday", "season_sin", "season_cos", "temperature_mean_c", "temperature_max_c",
    "temperature_min_c", "temperature_evening_c", "ghi_mean_w_m2", "heating_degree",
    "cooling_degree", "peak_week_before_kw", "peak_last_day_kw", "mean_last_day_kw",
    "peak_last_week_mean_kw", "temperature_last_day_c",
)
HEATING_BASE_C = 15.5
COOLING_BASE_C = 22.0


@dataclass(frozen=True)
class PeakForecastConfig:
    """How the daily-peak forecaster is trained and evaluated."""

    lead_days: int = 1          # forecast days 1 .. lead_days after the origin
    min_train_days: int = 120   # days of history before the first forecast origin
    refit_days: int = 7         # the model is refit every this many origins (features daily)
    calibration_days: int = 56  # recent out-of-sample errors the P10/P90 come from
    top_k: int = 5
    seed: int = 0


@dataclass(frozen=True)
class PeakMetrics:
    """Accuracy of the daily-peak forecasts over a set of days (one lead)."""

    days: int
    mae_kw: float                 # mean |P50 − actual| [kW]
    naive_mae_kw: float           # seasonal naive: the peak of the same weekday a week before [kW]
    linear_mae_kw: float          # linear regression on day type and forecast degree-days [kW]
    mae_reduction_vs_naive_pct: float  # 100 · (1 − mae / naive_mae) [%]
    bias_kw: float                # mean (P50 − actual) [kW]
    coverage_pct: float           # share of actual peaks within [P10, P90] [%]
    top_k: int
    top_k_hit_rate: float         # |top-k days by P50 ∩ top-k actual| / k [-]
    peak_hour_mae_h: float        # mean |forecast − actual| hour of the daily peak [h]


def score_peaks(actual: np.ndarray, p10: np.ndarray, p50: np.ndarray, p90: np.ndarray,
                naive: np.ndarray, linear: np.ndarray, hour_forecast: np.ndarray,
                hour_actual: np.ndarray, top_k: int) -> PeakMetrics:
    """`PeakMetrics` of the days where the actual peak and every forecast are known."""
    ok = np.isfinite(actual) & np.isfinite(p50) & np.isfinite(naive) & np.isfinite(linear)
    a, f = actual[ok], p50[ok]
    n = int(ok.sum())
    if n == 0:
        nan = float("nan")
        return PeakMetrics(0, nan, nan, nan, nan, nan, nan, 0, nan, nan)
    mae = float(np.mean(np.abs(f - a)))
    naive_mae = float(np.mean(np.abs(naive[ok] - a)))
    k = min(top_k, n)
    # Stable sorts: ties resolved by calendar order, the same on every platform.
    top_actual = set(np.argsort(-a, kind="stable")[:k])
    top_forecast = set(np.argsort(-f, kind="stable")[:k])
    hour_error = np.abs(hour_forecast[ok] - hour_actual[ok])
    hour_error = np.minimum(hour_error, 24.0 - hour_error)  # 23:45 vs 00:00 is 15 min apart
    return PeakMetrics(
        days=n,
        mae_kw=mae,
        naive_mae_kw=naive_mae,
        linear_mae_kw=float(np.mean(np.abs(linear[ok] - a))),
        mae_reduction_vs_naive_pct=100.0 * (1.0 - mae / naive_mae) if naive_mae > 0 else 0.0,
        bias_kw=float(np.mean(f - a)),
        coverage_pct=100.0 * float(np.mean((a >= p10[ok]) & (a <= p90[ok]))),
        top_k=k,
        top_k_hit_rate=len(top_actual & top_forecast) / k,
        peak_hour_mae_h=float(np.nanmean(hour_error)) if np.isfinite(hour_error).any() else np.nan,
    )


@dataclass(frozen=True)
class DailyPeakForecast:
    """Day-ahead forecast of the daily feeder-head peak of each day of a window.

    ``p10_kw`` … ``p90_kw`` for ``day[i]`` were issued at midnight before it from the history,
    the days before it and forecast weather only. ``window`` scores these days; ``evaluation``
    scores the rolling-origin forecasts of a longer period ending with the window (the window
    plus, when it is short, the last days of the simulated history before it), so that coverage
    and skill rest on enough days to mean something.
    """

    day: pd.DatetimeIndex      # naive local midnight of each window day
    p10_kw: np.ndarray
    p50_kw: np.ndarray
    p90_kw: np.ndarray
    actual_kw: np.ndarray      # the simulated daily peak [kW]
    naive_kw: np.ndarray       # seasonal naive (same weekday a week before) [kW]
    linear_kw: np.ndarray      # linear temperature regression [kW]
    peak_hour_forecast: np.ndarray  # [h]
    peak_hour_actual: np.ndarray    # [h]
    window: PeakMetrics
    evaluation: PeakMetrics
    evaluation_start: pd.Timestamp

    @property
    def mae_reduction_vs_naive_pct(self) -> float:
        return self.evaluation.mae_reduction_vs_naive_pct

    @property
    def coverage_pct(self) -> float:
        return self.evaluation.coverage_pct

    @property
    def top_k_hit_rate(self) -> float:
        return self.window.top_k_hit_rate


@dataclass(frozen=True)
class PeakForecastTable:
    """Rolling-origin forecasts of every day at every lead: arrays ``[lead − 1, day]``."""

    day: pd.DatetimeIndex
    actual_kw: np.ndarray      # [day]
    peak_hour_actual: np.ndarray  # [day]
    p10_kw: np.ndarray
    p50_kw: np.ndarray
    p90_kw: np.ndarray
    naive_kw: np.ndarray
    linear_kw: np.ndarray
    peak_hour_forecast: np.ndarray
    first_origin: int

    def score(self, days: np.ndarray, lead: int = 1, top_k: int = 5) -> PeakMetrics:
        """`PeakMetrics` at ``lead`` over the day positions ``days``."""
        k = lead - 1
        return score_peaks(self.actual_kw[days], self.p10_kw[k, days], self.p50_kw[k, days],
                           self.p90_kw[k, days], self.naive_kw[k, days], self.linear_kw[k, days],
                           self.peak_hour_forecast[k, days], self.peak_hour_actual[days], top_k)


def daily_load_table(load_kw: pd.Series) -> pd.DataFrame:
    """Per calendar day: ``peak_kw``, ``mean_kw`` and ``peak_hour`` of a load series.

    NaN steps (a power flow that did not converge) are left out; a day without a finite step
    is NaN throughout.
    """
    index = pd.DatetimeIndex(load_kw.index)
    values = load_kw.to_numpy(dtype=float)
    frame = pd.DataFrame({"load": values}, index=index)
    day = index.normalize()
    grouped = frame["load"].groupby(day)
    peak = grouped.max()
    hours = pd.Series(hour_of_day(index), index=index)
    masked = frame["load"].fillna(-np.inf)
    peak_pos = masked.groupby(day).transform("max").to_numpy() == masked.to_numpy()
    first = pd.Series(np.where(peak_pos & np.isfinite(values), hours.to_numpy(), np.nan),
                      index=index).groupby(day).min()
    return pd.DataFrame({"peak_kw": peak, "mean_kw": grouped.mean(), "peak_hour": first})


def _peak_rows(day_type: np.ndarray, weekday: np.ndarray, doy: np.ndarray, peak: np.ndarray,
               mean: np.ndarray, weather_forecast: np.ndarray, weather_observed: np.ndarray,
               targets: np.ndarray, lead: int) -> np.ndarray:
    """Feature rows (`PEAK_FEATURES`) of the target days ``targets`` at ``lead`` [days].

    The origin of day ``d`` is ``o = d − lead + 1``; only days before ``o`` enter the lags.
    """
    d = targets
    o = d - lead + 1
    w = weather_forecast[lead - 1, d]
    last7 = np.stack([peak[o - j] for j in range(1, 8)], axis=1)
    return np.column_stack([
        day_type[d], weekday[d], np.sin(2 * np.pi * doy[d] / 365.25),
        np.cos(2 * np.pi * doy[d] / 365.25), w,
        np.maximum(HEATING_BASE_C - w[:, 0], 0.0), np.maximum(w[:, 0] - COOLING_BASE_C, 0.0),
        peak[d - 7], peak[o - 1], mean[o - 1], np.nanmean(last7, axis=1),
        weather_observed[o - 1, 0],
    ])


def _linear_design(rows: np.ndarray) -> np.ndarray:
    """Benchmark regressors: intercept, Saturday, Sunday/holiday, heating and cooling degrees."""
    day_type = rows[:, 0]
    return np.column_stack([np.ones(len(rows)), day_type == 1, day_type == 2,
                            rows[:, PEAK_FEATURES.index("heating_degree")],
                            rows[:, PEAK_FEATURES.index("cooling_degree")]]).astype(float)


def _similar_day_peak_hour(profiles: np.ndarray, hours: np.ndarray, day_type: np.ndarray,
                           target: int, origin: int) -> float:
    """Peak hour of the mean profile of the last four same-type days before ``origin`` [h]."""
    same = np.flatnonzero(day_type[:origin] == day_type[target])[-4:]
    if len(same) == 0:
        return np.nan
    mean_profile = np.nanmean(profiles[same], axis=0)
    if not np.isfinite(mean_profile).any():
        return np.nan
    return float(hours[int(np.nanargmax(mean_profile))])


def forecast_daily_peaks(
    load_kw: pd.Series, weather_forecast: np.ndarray, weather_observed: np.ndarray, *,
    country: str, config: PeakForecastConfig = PeakForecastConfig(), first_origin: int | None = None,
    threads: int = 1,
) -> PeakForecastTable:
    """Rolling-origin (expanding window) forecasts of the daily peak of ``load_kw``.

    Parameters
    ----------
    load_kw
        Feeder-head load on a regular naive-local time index covering whole days [kW]; the
        history first, then the days to forecast.
    weather_forecast
        ``[lead − 1, day, DAILY_WEATHER]`` forecast weather of every day
        (`sim.weather_forecast.daily_forecast_weather`).
    weather_observed
        ``[day, DAILY_WEATHER]`` the weather as it happened (known once the day is over).
    first_origin
        Position of the first day forecast (default ``config.min_train_days``); origins before
        it only train.

    Returns
    -------
    PeakForecastTable
        P10/P50/P90, seasonal-naive and linear-regression forecasts of every day at every lead
        (NaN before the first origin).
    """
    from sim.calendar import day_types_of_dates

    table = daily_load_table(load_kw)
    days = pd.DatetimeIndex(table.index)
    n_days, lead_days = len(days), config.lead_days
    first = config.min_train_days if first_origin is None else int(first_origin)
    if first < config.min_train_days:
        raise InputError(f"history: {first} days before the first forecast, at least "
                         f"{config.min_train_days} needed")
    if weather_forecast.shape[:2] != (lead_days, n_days) or len(weather_observed) != n_days:
        raise ValueError("weather arrays must cover every day of the load at every lead")
    peak = table["peak_kw"].to_numpy()
    mean = table["mean_kw"].to_numpy()
    day_type = day_types_of_dates(days, country).astype(float)
    weekday = days.weekday.to_numpy(dtype=float)
    doy = days.dayofyear.to_numpy(dtype=float)
    step = pd.Timedelta(load_kw.index[1] - load_kw.index[0])
    per_day = int(round(pd.Timedelta(days=1) / step))
    # Day × time-of-day matrix for the similar-day peak hour (DST days: missing slots are NaN).
    index = pd.DatetimeIndex(load_kw.index)
    slot = ((index - index.normalize()) / step).astype(int)
    profiles = np.full((n_days, per_day), np.nan)
    profiles[days.get_indexer(index.normalize()), np.clip(slot, 0, per_day - 1)] = load_kw.to_numpy()
    slot_hours = np.arange(per_day) * step / pd.Timedelta(hours=1)

    shape = (lead_days, n_days)
    out = {name: np.full(shape, np.nan) for name in ("p10", "p50", "p90", "naive", "linear", "hour")}
    residuals: list[list[float]] = [[] for _ in range(lead_days)]  # actual / P50, day order
    models: list[object] = [None] * lead_days
    coefficients: list[np.ndarray | None] = [None] * lead_days
    features = {lead: _peak_rows(day_type, weekday, doy, peak, mean, weather_forecast,
                                 weather_observed, np.arange(6 + lead, n_days), lead)
                for lead in range(1, lead_days + 1)}
    for origin in range(first, n_days):
        refit = (origin - first) % config.refit_days == 0
        for lead in range(1, lead_days + 1):
            target = origin + lead - 1
            if target >= n_days:
                break
            k = lead - 1
            rows_all = features[lead]
            if refit or models[k] is None:
                # Training rows: target days known at the origin (d < origin), lags complete.
                train = np.arange(6 + lead, origin)
                x = rows_all[train - (6 + lead)]
                y = peak[train]
                ok = np.isfinite(y) & np.isfinite(x).all(axis=1)
                models[k] = _fit_peak_model(x[ok], y[ok], config.seed, threads)
                design = _linear_design(x[ok])
                coefficients[k] = np.linalg.lstsq(design, y[ok], rcond=None)[0]
            x_target = rows_all[target - (6 + lead)][None, :]
            p50 = float(_predict(models[k], x_target, threads)[0])
            out["p50"][k, target] = p50
            out["linear"][k, target] = float((_linear_design(x_target) @ coefficients[k])[0])
            out["naive"][k, target] = peak[target - 7]
            out["hour"][k, target] = _similar_day_peak_hour(profiles, slot_hours, day_type,
                                                            target, origin)
            # Bands once ten out-of-sample errors exist (all of days before this origin).
            recent = residuals[k][-config.calibration_days:]
            if len(recent) >= 10:
                low, high = np.quantile(recent, [0.1, 0.9])
                out["p10"][k, target] = p50 * low
                out["p90"][k, target] = p50 * high
        # The day before the next origin is now observed: score what was forecast for it.
        done = origin
        for k in range(lead_days):
            if np.isfinite(out["p50"][k, done]) and np.isfinite(peak[done]) and out["p50"][k, done] > 0:
                residuals[k].append(peak[done] / out["p50"][k, done])
    return PeakForecastTable(days, peak, table["peak_hour"].to_numpy(), out["p10"], out["p50"],
                             out["p90"], out["naive"], out["linear"], out["hour"], first)


def _fit_peak_model(x: np.ndarray, y: np.ndarray, seed: int, threads: int):
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    model = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                          min_samples_leaf=10, l2_regularization=1.0,
                                          random_state=seed)
    with threadpool_limits(limits=threads):
        return model.fit(x, y)


def _predict(model, x: np.ndarray, threads: int) -> np.ndarray:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        return model.predict(x)
