"""Daily feeder-peak forecasts: rolling origin, forecast weather, quantiles, peak-day metrics.

The peak a planner calls curtailment events on is forecast directly, one row per day, by
gradient boosting on calendar, forecast-weather, forecast-generation and load-lag features (the
design of the GEFCom2014 winners: Hong et al. 2016, "Probabilistic energy forecasting", IJF 32).
A similar-day feature carries the shape: the mean gross load profile of the last four days of
the same type, minus the generation forecast, whose maximum and its hour are the naive
"net peak" of the target day. Quantiles come from the empirical distribution of the model's own
recent out-of-sample errors (rolling split-conformal intervals, Vovk et al. 2005, "Algorithmic
learning in a random world"; Gibbs & Candès 2021), so the band is as wide as the forecaster has
actually been wrong.

Every number for day d is computed at an origin before d (midnight starting d for a day-ahead
forecast): the model is fit on days before the origin (expanding window, refit every
``refit_days``), the error quantiles use errors of days before the origin, the lags and the
similar days are days before the origin, and weather and generation enter as forecasts issued at
the origin (`sim.weather_forecast`). Benchmarks on the same days: seasonal naive (the peak of the
same weekday a week earlier) and a linear regression on day type and forecast degree-days.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scenarios.errors import InputError
from sim.calendar import hour_of_day

PEAK_FEATURES = (
    "day_type", "weekday", "season_sin", "season_cos", "temperature_mean_c", "temperature_max_c",
    "temperature_min_c", "temperature_evening_c", "ghi_mean_w_m2", "heating_degree",
    "cooling_degree", "peak_week_before_kw", "peak_last_day_kw", "mean_last_day_kw",
    "peak_last_week_mean_kw", "temperature_last_day_c", "generation_mean_kw",
    "generation_evening_kw", "similar_day_net_peak_kw", "regression_net_peak_kw",
)
BAND_COVERAGE = 0.8
"""Nominal coverage of the P10–P90 band."""
HEATING_BASE_C = 15.5
COOLING_BASE_C = 22.0


@dataclass(frozen=True)
class PeakForecastConfig:
    """How the daily-peak forecaster is trained and evaluated."""

    lead_days: int = 1          # forecast days 1 .. lead_days after the origin
    min_train_days: int = 120   # days of history before the first forecast origin
    refit_days: int = 7         # the model is refit every this many origins (features daily)
    calibration_days: int = 56  # recent out-of-sample errors [kW] the P10/P90 come from
    top_k: int = 5
    seed: int = 0
    adapt_rate: float = 0.05    # γ of the adaptive conformal band (0: fixed 10 %/90 % quantiles)


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
    and skill rest on enough days to mean something. A day whose inputs are unknown (a power
    flow that did not converge on it or on the days its lags read) is NaN.
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
        """Over the evaluation period [%]."""
        return self.evaluation.mae_reduction_vs_naive_pct

    @property
    def coverage_pct(self) -> float:
        """P10–P90 coverage over the evaluation period [%]."""
        return self.evaluation.coverage_pct

    @property
    def top_k_hit_rate(self) -> float:
        """Over the window's days [-]."""
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
               similar: np.ndarray, targets: np.ndarray, lead: int) -> np.ndarray:
    """Feature rows (`PEAK_FEATURES`) of the target days ``targets`` at ``lead`` [days].

    The origin of day ``d`` is ``o = d − lead + 1``; only days before ``o`` enter the lags.
    ``similar`` is `_similar_day_features` of the same lead.
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
        weather_observed[o - 1, 0], similar[d, :3],
    ])


def _linear_design(rows: np.ndarray) -> np.ndarray:
    """Benchmark regressors: intercept, Saturday, Sunday/holiday, heating and cooling degrees."""
    day_type = rows[:, 0]
    return np.column_stack([np.ones(len(rows)), day_type == 1, day_type == 2,
                            rows[:, PEAK_FEATURES.index("heating_degree")],
                            rows[:, PEAK_FEATURES.index("cooling_degree")]]).astype(float)


def _day_slots(time: pd.DatetimeIndex, days: pd.DatetimeIndex, values: np.ndarray,
               per_day: int, step: pd.Timedelta) -> np.ndarray:
    """``values[..., time]`` → ``[..., day, slot of the day]`` (DST gaps NaN, repeats overwrite)."""
    slot = np.clip(np.asarray((time - time.normalize()) / step, dtype=np.int64), 0, per_day - 1)
    out = np.full(values.shape[:-1] + (len(days), per_day), np.nan)
    out[..., days.get_indexer(time.normalize()), slot] = values
    return out


def _similar_day_features(gross: np.ndarray, generation_forecast: np.ndarray,
                          day_type: np.ndarray, slot_hours: np.ndarray, lead: int) -> np.ndarray:
    """Per target day at ``lead``: ``[day, (generation mean, generation 17–21 h, net peak,
    net peak hour)]`` from the forecast generation and the gross load of similar past days.

    The similar days are the last four of the target's day type before its origin; their mean
    gross profile (feeder head + generation) minus the forecast generation is the target's
    expected net profile, whose maximum and hour are the features.
    """
    n_days = gross.shape[0]
    out = np.full((n_days, 4), np.nan)
    evening = (slot_hours >= 17.0) & (slot_hours < 21.0)
    positions = {t: np.flatnonzero(day_type == t) for t in np.unique(day_type)}
    for d in range(lead - 1, n_days):
        g = generation_forecast[lead - 1, d]
        if not np.isfinite(g).any():
            continue
        origin = d - lead + 1
        same = positions[day_type[d]]
        same = same[max(0, np.searchsorted(same, origin) - 4): np.searchsorted(same, origin)]
        out[d, 0] = np.nanmean(g)
        out[d, 1] = np.nanmean(g[evening]) if np.isfinite(g[evening]).any() else np.nanmean(g)
        if len(same) == 0:
            continue
        with warnings.catch_warnings():
            # A slot no similar day has (non-converged days are NaN) stays NaN, not a warning.
            warnings.simplefilter("ignore", RuntimeWarning)
            profile = np.nanmean(gross[same], axis=0) - g
        if np.isfinite(profile).any():
            best = int(np.nanargmax(profile))
            out[d, 2], out[d, 3] = profile[best], slot_hours[best]
    return out


class _SlotRegression:
    """Gross load of each time-of-day slot, linear in temperature and day type (per slot).

    ``gross[d, s] ≈ β_s · (1, Saturday, Sunday/holiday, HDD(T[d, s]), CDD(T[d, s]), HDD(T̄[d]),
    CDD(T̄[d]))``, the multiple-regression benchmark of hourly load forecasting (Hong, Gui,
    Baran & Willis 2010, "Modeling and forecasting hourly electric load by multiple linear
    regression with interactions"; the GEFCom2012 "vanilla" model), fit by least squares on the
    days before an origin. Applied to forecast temperature, minus the forecast generation, its
    maximum over the day is the regression's net peak, a feature of the peak model.
    """

    def __init__(self, gross: np.ndarray, temperature: np.ndarray, daily_mean: np.ndarray,
                 day_type: np.ndarray) -> None:
        self.gross, self.day_type = gross, day_type
        self.design_observed = self._design(temperature, daily_mean)
        self.beta = np.zeros((gross.shape[1], self.design_observed.shape[2]))

    def _design(self, temperature: np.ndarray, daily_mean: np.ndarray) -> np.ndarray:
        shape = temperature.shape
        day_mean = np.broadcast_to(daily_mean[:, None], shape)
        return np.stack([
            np.ones(shape), np.broadcast_to((self.day_type == 1)[:, None], shape),
            np.broadcast_to((self.day_type == 2)[:, None], shape),
            np.maximum(HEATING_BASE_C - temperature, 0.0), np.maximum(temperature - COOLING_BASE_C, 0.0),
            np.maximum(HEATING_BASE_C - day_mean, 0.0), np.maximum(day_mean - COOLING_BASE_C, 0.0),
        ], axis=-1).astype(float)

    def fit(self, origin: int) -> None:
        """Least squares per slot on the days before ``origin`` (a small ridge keeps a slot
        whose regressor never varies, e.g. no cooling degree in winter, well posed)."""
        x = self.design_observed[:origin]
        y = self.gross[:origin]
        ok = np.isfinite(y) & np.isfinite(x).all(axis=-1)
        x = np.where(ok[..., None], x, 0.0)
        y = np.where(ok, y, 0.0)
        normal = np.einsum("dsp,dsq->spq", x, x) + 1e-6 * np.eye(x.shape[-1])
        self.beta = np.linalg.solve(normal, np.einsum("dsp,ds->sp", x, y)[..., None])[..., 0]

    def net_peak(self, temperature: np.ndarray, daily_mean: np.ndarray,
                 generation: np.ndarray) -> np.ndarray:
        """Per day: max over slots of predicted gross − ``generation`` [kW] (NaN if unknown)."""
        predicted = np.einsum("dsp,sp->ds", self._design(temperature, daily_mean), self.beta)
        net = predicted - generation
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(net).any(axis=1)
            out = np.full(len(net), np.nan)
            out[valid] = np.nanmax(net[valid], axis=1)
        return out


def forecast_daily_peaks(
    load_kw: pd.Series, weather_forecast: np.ndarray, weather_observed: np.ndarray, *,
    temperature_c: np.ndarray, temperature_forecast_c: np.ndarray, country: str,
    config: PeakForecastConfig = PeakForecastConfig(), first_origin: int | None = None,
    generation_kw: np.ndarray | None = None, generation_forecast_kw: np.ndarray | None = None,
    threads: int = 1,
) -> PeakForecastTable:
    """Rolling-origin (expanding window) forecasts of the daily peak of ``load_kw``.

    Parameters
    ----------
    load_kw
        Feeder-head load on a regular naive-local time index covering whole days [kW]; the
        history first, then the days to forecast. NaN steps (not converged) are left out.
    weather_forecast
        ``[lead − 1, day, DAILY_WEATHER]`` forecast weather of every day
        (`sim.weather_forecast.daily_forecast_weather`).
    weather_observed
        ``[day, DAILY_WEATHER]`` the weather as it happened (known once the day is over).
    temperature_c, temperature_forecast_c
        Step temperature as it happened ``[time]`` and as forecast ``[lead − 1, time]`` [°C]
        (`sim.weather_forecast.forecast_weather_steps`), for the per-slot regression.
    first_origin
        Position of the first day forecast (default ``config.min_train_days``); origins before
        it only train.
    generation_kw, generation_forecast_kw
        Generation of the net's own generators behind the feeder head ``[time]`` [kW] and its
        forecast ``[lead − 1, time]`` (`sim.weather_forecast.forecast_generation`); none if
        omitted.

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
    index = pd.DatetimeIndex(load_kw.index)
    if generation_kw is None:
        generation_kw = np.zeros(len(index))
        generation_forecast_kw = np.zeros((lead_days, len(index)))
    if generation_forecast_kw is None or generation_forecast_kw.shape != (lead_days, len(index)):
        raise ValueError("generation_forecast_kw must be [lead, time] with generation_kw")
    peak = table["peak_kw"].to_numpy()
    mean = table["mean_kw"].to_numpy()
    day_type = day_types_of_dates(days, country).astype(float)
    weekday = days.weekday.to_numpy(dtype=float)
    doy = days.dayofyear.to_numpy(dtype=float)
    step = pd.Timedelta(index[1] - index[0])
    per_day = int(round(pd.Timedelta(days=1) / step))
    slot_hours = np.arange(per_day) * step / pd.Timedelta(hours=1)
    gross = _day_slots(index, days, load_kw.to_numpy(dtype=float) + generation_kw, per_day, step)
    generation_slots = _day_slots(index, days, np.asarray(generation_forecast_kw, dtype=float),
                                  per_day, step)
    regression = _SlotRegression(
        gross, _day_slots(index, days, np.asarray(temperature_c, dtype=float), per_day, step),
        weather_observed[:, 0], day_type)
    temperature_slots = _day_slots(index, days, np.asarray(temperature_forecast_c, dtype=float),
                                   per_day, step)

    shape = (lead_days, n_days)
    out = {name: np.full(shape, np.nan) for name in ("p10", "p50", "p90", "naive", "linear", "hour")}
    residuals: list[list[float]] = [[] for _ in range(lead_days)]  # actual − P50 [kW], day order
    # Adaptive conformal inference (Gibbs & Candès 2021): the miscoverage level the band is
    # read at moves by γ·(target − missed) after each observed day, so that a drift in the
    # error spread (season, weather regime) is corrected within weeks.
    level = np.full(lead_days, 1.0 - BAND_COVERAGE)
    models: list[_PeakModel | None] = [None] * lead_days
    current: list[np.ndarray] = [np.empty(0)] * lead_days  # feature rows of the current fit
    features, similar = {}, {}
    for lead in range(1, lead_days + 1):
        similar[lead] = _similar_day_features(gross, generation_slots, day_type, slot_hours, lead)
        features[lead] = _peak_rows(day_type, weekday, doy, peak, mean, weather_forecast,
                                    weather_observed, similar[lead],
                                    np.arange(6 + lead, n_days), lead)
    # OpenMP over-subscription on a shared machine costs several times the fit; one limit for
    # the whole loop (setting it per call costs more than a fit of a few hundred rows), set
    # after scikit-learn has loaded its OpenMP runtime, or the limit misses it.
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        for origin in range(first, n_days):
            refit = (origin - first) % config.refit_days == 0
            for lead in range(1, lead_days + 1):
                target = origin + lead - 1
                if target >= n_days:
                    break
                k = lead - 1
                rows_all = current[k]
                if refit or models[k] is None:
                    if k == 0:
                        regression.fit(origin)
                    # The regression's net peak of every day (fit on days before the origin).
                    net_peak = regression.net_peak(temperature_slots[k], weather_forecast[k, :, 0],
                                                   generation_slots[k])
                    rows_all = np.column_stack([features[lead],
                                                net_peak[6 + lead:]])
                    current[k] = rows_all
                    # Training rows: target days known at the origin (d < origin), lags complete.
                    train = np.arange(6 + lead, origin)
                    x = rows_all[train - (6 + lead)]
                    y = peak[train]
                    ok = np.isfinite(y) & np.isfinite(x).all(axis=1)
                    models[k] = _PeakModel(config.seed).fit(x[ok], y[ok])
                x_target = rows_all[target - (6 + lead)][None, :]
                if not np.isfinite(x_target).all():
                    continue
                p50_row, linear_row = models[k].predict(x_target)
                p50 = float(p50_row[0])
                out["p50"][k, target] = p50
                out["linear"][k, target] = float(linear_row[0])
                out["naive"][k, target] = peak[target - 7]
                out["hour"][k, target] = similar[lead][target, 3]
                # Bands once ten out-of-sample errors exist (all of days before this origin).
                recent = residuals[k][-config.calibration_days:]
                if len(recent) >= 10:
                    alpha = float(np.clip(level[k], 0.0, 1.0))
                    low, high = np.quantile(recent, [alpha / 2.0, 1.0 - alpha / 2.0])
                    out["p10"][k, target] = p50 + min(low, 0.0)
                    out["p90"][k, target] = p50 + max(high, 0.0)
            # The day starting at this origin is observed before the next: score its forecasts.
            done = origin
            for k in range(lead_days):
                if np.isfinite(out["p50"][k, done]) and np.isfinite(peak[done]):
                    residuals[k].append(peak[done] - out["p50"][k, done])
                if np.isfinite(out["p10"][k, done]) and np.isfinite(peak[done]):
                    missed = not out["p10"][k, done] <= peak[done] <= out["p90"][k, done]
                    level[k] += config.adapt_rate * ((1.0 - BAND_COVERAGE) - missed)
    return PeakForecastTable(days, peak, table["peak_hour"].to_numpy(), out["p10"], out["p50"],
                             out["p90"], out["naive"], out["linear"], out["hour"], first)


class _PeakModel:
    """P50 model of the daily peak (gradient boosting) and the linear benchmark, fit together."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> _PeakModel:
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.coefficients = np.linalg.lstsq(_linear_design(x), y, rcond=None)[0]
        self.trees = HistGradientBoostingRegressor(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=10,
            l2_regularization=1.0, random_state=self.seed).fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P50, linear benchmark) at the rows ``x``."""
        return self.trees.predict(x), _linear_design(x) @ self.coefficients
