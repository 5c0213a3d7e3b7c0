"""Calibrate per-customer load parameters from interval meter data.

For every customer the interval power ``p_t`` [kW] is regressed, by non-negative least squares
(Lawson & Hanson 1974), on

    p_t ≈ Σ_c a_c · B_c(t) + h · D(t)

where ``B_c`` are the calendar-correct class shapes of `sim.shapes` (year mean 1; residential,
commercial, industrial, agricultural) and ``D`` is the heating-degree driver of the simulator:
``max(0, T_balance − T_lagged(t))`` × thermostat programme (× COP ratio for a heat pump), with
``T_lagged`` the outdoor temperature smoothed with a building time constant; balance point and
time constant are chosen per customer on a grid by least residual — a PRISM-style
degree-day model (Fels 1986, "PRISM: An Introduction", Energy and Buildings 9) at interval
resolution. Then

- ``annual_kwh`` = 8760 · Σ a_c (base energy per year, the population's definition);
- ``shape_weight_<segment>`` = a_c / Σ a_c and ``segment`` = the largest weight;
- ``heat_kw_per_degc`` = h, with ``has_heat_pump``/``has_electric_heating`` from whichever heating
  form fits better when heating explains a material share of the load;
- ``noise_sd`` = robust (MAD) standard deviation of the relative residual of the base load.

The result is a customers table with the column names of `customers.io` (plus the optional
simulator fields), ready to be merged with bus assignments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.errors import InputError
from sim import kernels
from sim.profiles import SEGMENT_DIVERSITY
from sim.shapes import SEGMENT_PROFILES, base_series

HEATING_MIN_SHARE = 0.10  # heating must explain this share of energy to count as present [-]


@dataclass(frozen=True)
class CalibrationConfig:
    """Options of `calibrate`."""

    country: str = "DE"
    balance_grid_c: tuple[float, ...] = (13.5, 14.0, 14.5, 15.0, 15.5, 16.0, 16.5, 17.0, 17.5)
    tau_grid_h: tuple[float, ...] = (4.0, 8.0, 12.0, 18.0, 24.0, 32.0)
    min_coverage: float = 0.5  # least share of valid intervals to fit a customer [-]
    # Class shapes offered to the fit; the four are partly collinear, so when the candidate
    # classes are known (e.g. only households and shops on the feeder) name just those.
    shape_segments: tuple[str, ...] = tuple(SEGMENT_PROFILES)


def heating_drivers(
    temperature_c: np.ndarray, hour: np.ndarray, step_h: float, balance_c: float, tau_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Heating-degree drivers of resistive heating and of a heat pump [K].

    Same programme and COP as `sim.kernels` (the model the simulator draws from), with a fixed
    balance point and building time constant.
    """
    cop_ratio, schedule, _ = kernels.time_drivers(np.ascontiguousarray(temperature_c, dtype=float),
                                                  np.ascontiguousarray(hour, dtype=float))
    alpha = 1.0 - np.exp(-step_h / tau_h)
    lagged = np.empty(len(temperature_c))
    state = float(temperature_c[0])
    for t, value in enumerate(temperature_c):
        state += alpha * (value - state)
        lagged[t] = state
    deficit = np.maximum(balance_c - lagged, 0.0) * schedule
    return deficit, deficit * cop_ratio


def _nnls_gram(gram: np.ndarray, xty: np.ndarray, yty: float) -> tuple[np.ndarray, float]:
    """NNLS from the normal equations: ``min ||Xc - y||², c ≥ 0`` given XᵀX, Xᵀy, yᵀy.

    With XᵀX = RᵀR (Cholesky), ``||Xc - y||² = ||Rc - R⁻ᵀXᵀy||² + const``, so the small
    triangular problem has the same minimiser.
    """
    from scipy.linalg import cholesky, solve_triangular
    from scipy.optimize import nnls

    ridge = 1e-10 * np.trace(gram) / len(gram)
    r = cholesky(gram + ridge * np.eye(len(gram)), lower=False)
    coef, _ = nnls(r, solve_triangular(r, xty, trans="T"))
    residual = yty - 2.0 * coef @ xty + coef @ gram @ coef
    return coef, float(max(residual, 0.0))


def _fit_all(design: np.ndarray, power: np.ndarray, candidates) -> tuple[list[tuple], list[tuple]]:
    """Per customer, the candidate (heating form, balance, tau) with least NNLS residual, and
    the fit without heating (the first candidate).

    ``design`` holds the shape regressors ``[T, k]``; candidates add one heating driver column.
    Customers with complete data share each candidate's Gram matrix; the others get their own.
    """
    n = power.shape[0]
    valid = np.isfinite(power)
    y_all = np.where(valid, power, 0.0)
    complete = valid.all(axis=1)
    yty = (y_all * y_all).sum(axis=1)
    best: list[tuple] = [None] * n  # type: ignore[list-item]
    no_heating: list[tuple] = [None] * n  # type: ignore[list-item]
    for form, balance, tau, driver in candidates:
        x = design if driver is None else np.column_stack([design, driver])
        gram_full = x.T @ x
        xty_all = y_all @ x  # rows with NaN contribute zero
        for i in range(n):
            gram = gram_full if complete[i] else x[valid[i]].T @ x[valid[i]]
            coef, residual = _nnls_gram(gram, xty_all[i], float(yty[i]))
            if best[i] is None or residual < best[i][4] * (1.0 - 1e-9):
                best[i] = (form, balance, tau, coef, residual)
            if driver is None:
                no_heating[i] = (form, balance, tau, coef, residual)
    return best, no_heating


def _interval_groups(meter: pd.DataFrame) -> list[tuple[pd.Timedelta, pd.DataFrame]]:
    """The clean long frame split by each customer's own interval length (ascending)."""
    for column in ("customer_id", "timestamp", "kwh"):
        if column not in meter.columns:
            raise InputError(f"meter data: missing column '{column}'")
    frame = meter[["customer_id", "timestamp", "kwh"]].copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame = frame.drop_duplicates(["customer_id", "timestamp"])
    frame = frame.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)
    steps = frame.groupby("customer_id")["timestamp"].diff()
    own = steps[steps > pd.Timedelta(0)].groupby(frame["customer_id"]).agg(
        lambda d: d.mode().iloc[0])
    if own.empty:
        raise InputError("meter data: need at least two intervals per customer")
    step_of = frame["customer_id"].map(own)
    return [(pd.Timedelta(step), part.drop(columns="step"))
            for step, part in frame.assign(step=step_of).dropna(subset=["step"])
            .groupby("step", sort=True)]


def _meter_matrix(frame: pd.DataFrame, step: pd.Timedelta
                  ) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, float]:
    time = pd.date_range(frame["timestamp"].min(), frame["timestamp"].max(), freq=step)
    wide = frame.pivot(index="timestamp", columns="customer_id", values="kwh").reindex(time)
    step_h = step / pd.Timedelta(hours=1)
    return time, wide.columns.to_numpy().astype(str), wide.to_numpy(dtype=float).T / step_h, step_h


def calibrate(
    meter: pd.DataFrame | Path | str,
    temperature_c: pd.Series | None = None,
    config: CalibrationConfig | None = None,
    *,
    bus: int | Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Fit per-customer load parameters from interval meter data.

    Parameters
    ----------
    meter
        Clean long frame ``customer_id, timestamp, kwh`` (output of
        `sim.quality.screen_meter_data`), or a meter file path (screened first). Customers
        are fitted on their own interval grid (a file may mix 15-min and hourly meters);
        IDs are text.
    temperature_c
        Outdoor temperature [°C] indexed by naive local time (any resolution; interpolated onto
        the meter grid). Without it, no temperature sensitivity is fitted
        (``heat_kw_per_degc`` = 0).
    config
        Calibration options.
    bus
        Bus of every customer, or a mapping customer id (text) → bus, written as column
        ``bus``.

    Returns
    -------
    pd.DataFrame
        One row per customer: ``customer_id``, ``segment``, ``annual_kwh`` [kWh],
        ``heat_kw_per_degc`` [kW/K], ``has_heat_pump``, ``has_electric_heating``, ``noise_sd`` [-],
        ``shape_weight_<segment>`` [-], ``fit_r2`` [-], ``coverage`` [-] (and ``bus``).
    """
    config = config or CalibrationConfig()
    if not isinstance(meter, pd.DataFrame):
        from sim.quality import screen_meter_data

        meter, _ = screen_meter_data(Path(meter))
    segments = list(config.shape_segments)
    unknown = sorted(set(segments) - set(SEGMENT_PROFILES))
    if unknown or not segments:
        raise InputError(f"calibration.shape_segments: unknown segment(s) {', '.join(unknown)}")
    rows = []
    for step, part in _interval_groups(meter):
        rows += _calibrate_grid(*_meter_matrix(part, step), temperature_c, config)
    result = pd.DataFrame(rows).sort_values("customer_id", kind="stable").reset_index(drop=True)
    # Customers without enough data keep annual_kwh = NaN (the caller decides to drop them);
    # every other column gets the simulator's neutral default so the table stays rectangular.
    defaults = {"heat_kw_per_degc": 0.0, "has_heat_pump": False, "has_electric_heating": False,
                "noise_sd": SEGMENT_DIVERSITY["residential"][0], "shape_contrast": 1.0}
    defaults.update({f"shape_weight_{s}": float(s == segments[0]) for s in segments})
    for column, value in defaults.items():
        result[column] = result[column].fillna(value) if column in result else value
    for column in ("has_heat_pump", "has_electric_heating"):
        result[column] = result[column].astype(bool)
    if bus is not None:
        result.insert(1, "bus", [bus.get(c, -1) if isinstance(bus, Mapping) else bus
                                 for c in result["customer_id"]])
    return result


def _calibrate_grid(time: pd.DatetimeIndex, ids: np.ndarray, power: np.ndarray, step_h: float,
                    temperature_c: pd.Series | None, config: CalibrationConfig) -> list[dict]:
    """Fit rows of the customers sharing one interval grid (see `calibrate`)."""
    segments = list(config.shape_segments)
    shapes = np.stack([base_series(s, time, config.country, step_h) for s in segments], axis=1)
    if temperature_c is not None:
        series = pd.Series(temperature_c).sort_index()
        target = time.asi8.astype(float)
        temp = np.interp(target, series.index.asi8.astype(float), series.to_numpy(dtype=float))
        hour = (time.hour + time.minute / 60.0).to_numpy(dtype=float)
    candidates: list[tuple[str, float, float, np.ndarray | None]] = [("none", np.nan, np.nan, None)]
    if temperature_c is not None:
        for balance in config.balance_grid_c:
            for tau in config.tau_grid_h:
                resistive, heat_pump = heating_drivers(temp, hour, step_h, balance, tau)
                candidates += [("electric", balance, tau, resistive),
                               ("heat_pump", balance, tau, heat_pump)]
    design = np.column_stack([np.ones(len(time)), -np.ones(len(time)), shapes])
    fits, plain_fits = _fit_all(design, power, candidates)
    rows = []
    for i, cid in enumerate(ids):
        p = power[i]
        valid = np.isfinite(p)
        coverage = float(valid.mean())
        row: dict = {"customer_id": str(cid), "coverage": coverage}
        if coverage < config.min_coverage or valid.sum() < 2 * len(segments) + 2:
            row.update({"segment": "residential", "annual_kwh": np.nan, "fit_r2": np.nan})
            rows.append(row)
            continue
        y = p[valid]
        form, balance, tau, coef, _ = fits[i]
        if form != "none":
            driver = next(c[3] for c in candidates if c[:3] == (form, balance, tau))
            if coef[-1] * float(driver[valid].sum()) < HEATING_MIN_SHARE * max(float(y.sum()), 1e-12):
                form, balance, tau, coef, _ = plain_fits[i]
        # Columns: +1, -1 (a free constant: customers' shape contrast differs from the class),
        # the class shapes, then the heating driver.
        constant = coef[0] - coef[1]
        a = coef[2 : 2 + len(segments)]
        heat = float(coef[2 + len(segments)]) if form != "none" else 0.0
        x = design[valid]
        if form != "none":
            x = np.column_stack([x, driver[valid]])
        fitted = x @ coef
        base_fit = constant + shapes[valid] @ a
        base_level = constant + a.sum()
        relative = (y - fitted) / np.maximum(base_fit, 1e-9 + 0.05 * abs(base_level))
        noise = 1.4826 * float(np.median(np.abs(relative - np.median(relative))))
        ss_total = float(((y - y.mean()) ** 2).sum())
        shape_sum = a.sum()
        weights = a / shape_sum if shape_sum > 0 else np.full(len(segments), 1.0 / len(segments))
        row.update({
            "segment": segments[int(np.argmax(weights))],
            "annual_kwh": float(base_level * 8760.0),
            "heat_kw_per_degc": heat,
            "has_heat_pump": form == "heat_pump",
            "has_electric_heating": form == "electric",
            "noise_sd": noise,
            "shape_contrast": float(shape_sum / base_level) if base_level > 0 else np.nan,
            "fit_r2": 1.0 - float(((y - fitted) ** 2).sum()) / ss_total if ss_total > 0 else 0.0,
        })
        row.update({f"shape_weight_{s}": float(w) for s, w in zip(segments, weights, strict=True)})
        rows.append(row)
    return rows
