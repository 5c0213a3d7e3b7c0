"""Objective multi-factor customer satisfaction.

Five factors, each measured on the customer and mapped to a score in [0, 1] (1 = no complaint)
against fixed reference scales (`score_factors`), so that indices before and after offers are
comparable:

================= ================================================================ ==========
factor            raw measure (higher is worse)                                    score 0 at
================= ================================================================ ==========
bill_change       relative bill change (bill after / bill before − 1); the status   +20 %
                  quo scores 0.5 and a 20 % saving scores 1
discomfort        share of the customer's load removed during events, plus the      50 %
                  share of daily energy shifted by a TOU tariff
event_excess      ¼·min(e, c)/c + max(e − c, 0)/c for e events against c tolerated  1
voltage_quality   share of time outside ±band plus twice the share outside ±2·band  5 %
                  (from the power flow, at the customer's bus)
fairness          |own burden − segment median burden| (burden = bill change +      20 %
                  discomfort)
================= ================================================================ ==========

Weights are objective, from the dispersion of the factor matrix over the alternatives (every
customer × offer): the **entropy weight method** (Shannon 1948 information entropy applied to
multi-criteria weighting, e.g. Zou, Yun & Sun 2006, *J. Environ. Sci.* 18(5):1020–1023) or
**CRITIC** (Diakoulaki, Mavrotas & Papayannakis 1995, *Computers & Operations Research*
22(7):763–770). The index is the weighted sum of scores, in [0, 1].
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from scenarios.schema import Scenario

FACTORS: tuple[str, ...] = (
    "bill_change", "discomfort", "event_excess", "voltage_quality", "fairness",
)
#: Raw value at which a factor's score reaches 0 (see module docstring).
SCALES: dict[str, float] = {
    "bill_change": 0.20,
    "discomfort": 0.50,
    "event_excess": 1.0,
    "voltage_quality": 0.05,
    "fairness": 0.20,
}


def event_excess(events: np.ndarray, tolerated: np.ndarray) -> np.ndarray:
    """Raw event factor: ¼ per tolerated event share, full weight beyond tolerance [-]."""
    e = np.asarray(events, dtype=np.float64)
    c = np.maximum(np.asarray(tolerated, dtype=np.float64), 1.0)
    return 0.25 * np.minimum(e, c) / c + np.maximum(e - c, 0.0) / c


def voltage_outside_share(vm_pu: np.ndarray, band_pu: float) -> np.ndarray:
    """Raw voltage factor per row of ``vm_pu[customer, time]``: share outside ±band plus twice
    the share outside ±2·band [-]."""
    dev = np.abs(np.asarray(vm_pu, dtype=np.float64) - 1.0)
    dev = np.where(np.isfinite(dev), dev, 0.0)
    return (dev > band_pu).mean(axis=-1) + 2.0 * (dev > 2.0 * band_pu).mean(axis=-1)


def fairness(burden: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Raw fairness factor: |burden − median burden of the customer's segment| [-].

    ``burden`` is ``[customer]`` or ``[customer, offer]`` (median per offer column).
    """
    b = np.asarray(burden, dtype=np.float64)
    out = np.zeros_like(b)
    for name in np.unique(segment):
        mask = segment == name
        out[mask] = np.abs(b[mask] - np.median(b[mask], axis=0))
    return out


def score_factors(raw: np.ndarray) -> np.ndarray:
    """Map raw factors ``[..., factor]`` (order `FACTORS`) to scores in [0, 1]."""
    raw = np.asarray(raw, dtype=np.float64)
    scales = np.array([SCALES[f] for f in FACTORS])
    scores = np.clip(1.0 - raw / scales, 0.0, 1.0)
    bill = FACTORS.index("bill_change")
    scores[..., bill] = np.clip(0.5 - 0.5 * raw[..., bill] / scales[bill], 0.0, 1.0)
    return scores


def entropy_weights(X: np.ndarray) -> np.ndarray:
    """Entropy weight method over a non-negative benefit matrix ``X[alternative, factor]``.

    ``p_ij = x_ij / Σ_i x_ij``, ``e_j = −Σ_i p_ij ln p_ij / ln m``, ``w_j = (1 − e_j) / Σ_k
    (1 − e_k)`` (0·ln 0 = 0; an all-zero column counts as uniform). Equal weights when no
    column varies.
    """
    X = np.asarray(X, dtype=np.float64)
    m, f = X.shape
    if m < 2:
        return np.full(f, 1.0 / f)
    total = X.sum(axis=0)
    p = np.where(total > 0, X / np.where(total > 0, total, 1.0), 1.0 / m)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(p), 0.0)
    e = -plogp.sum(axis=0) / np.log(m)
    d = np.clip(1.0 - e, 0.0, None)
    if d.sum() <= 1e-15:
        return np.full(f, 1.0 / f)
    return d / d.sum()


def critic_weights(X: np.ndarray) -> np.ndarray:
    """CRITIC weights (Diakoulaki et al. 1995) of a benefit matrix ``X[alternative, factor]``.

    ``C_j = σ_j Σ_k (1 − r_jk)`` with σ the column standard deviation and r the Pearson
    correlation (0 against a constant column); ``w = C / Σ C``, equal weights if all C are 0.
    """
    X = np.asarray(X, dtype=np.float64)
    f = X.shape[1]
    sigma = X.std(axis=0)
    r = np.zeros((f, f))
    varying = sigma > 0
    if varying.sum() >= 2:
        r[np.ix_(varying, varying)] = np.corrcoef(X[:, varying], rowvar=False)
    np.fill_diagonal(r, 1.0)
    c = sigma * (1.0 - r).sum(axis=1)
    if c.sum() <= 1e-15:
        return np.full(f, 1.0 / f)
    return c / c.sum()


def factor_weights(X: np.ndarray, method: str) -> np.ndarray:
    """Weights by the scenario's ``satisfaction.weighting`` method (``entropy``/``critic``)."""
    return critic_weights(X) if method == "critic" else entropy_weights(X)


def satisfaction_index(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sum of factor scores ``X[..., factor]`` → satisfaction in [0, 1]."""
    w = np.asarray(weights, dtype=np.float64)
    return np.clip(np.asarray(X, dtype=np.float64) @ (w / w.sum()), 0.0, 1.0)


def _mean_price(tariff) -> float:
    if tariff.kind == "flat":
        return float(tariff.price_eur_per_kwh or 0.0)
    return sum((p.end_h - p.start_h) * p.price_eur_per_kwh for p in tariff.periods) / 24.0


def customer_voltage(population: xr.Dataset, vm_pu: xr.DataArray) -> np.ndarray:
    """Voltage at each customer's bus ``[customer, time]`` [p.u.] from ``vm_pu[time, bus]``."""
    table = vm_pu.transpose("time", "bus")
    position = table.get_index("bus").get_indexer(population["bus"].values)
    if (position < 0).any():
        bad = int(population["bus"].values[np.flatnonzero(position < 0)[0]])
        raise ValueError(f"vm_pu has no bus {bad}")
    return table.values[:, position].T


def _period_prices(tariff, hours: np.ndarray) -> np.ndarray:
    from customers.response import step_prices

    return step_prices(hours, tariff)


def candidate_factor_matrix(population: xr.Dataset, scenario: Scenario,
                            voltage_raw: np.ndarray | None = None,
                            profiles: xr.Dataset | None = None) -> np.ndarray:
    """Population-level prediction of raw factors for every customer × menu alternative.

    A screen used to fix the weights before the offer problem is built: the bill change is the
    tariff's price applied to the customer's simulated imports (``profiles``; or the day-mean
    price without them) against the current tariff, before any behavioural response; discomfort
    from the contract kW against the customer's mean load; events = the contract's
    ``max_events``. Returns ``[customer·alternative, factor]``.
    """
    n = population.sizes["customer"]
    current = next(t for t in scenario.offers.tariffs if t.name == scenario.offers.current_tariff)
    comfort = population["comfort_events"].values
    segment = population["segment"].values
    voltage = np.zeros(n) if voltage_raw is None else np.asarray(voltage_raw, dtype=np.float64)
    if profiles is not None:
        from customers.response import step_hours

        imports = np.maximum(profiles["p_kw"].transpose("customer", "time").values, 0.0)
        hours = step_hours(profiles["time"].values)
        mean_kw = np.maximum(imports.mean(axis=1), 1e-3)
        cost0 = np.maximum(imports @ _period_prices(current, hours), 1e-9)

        def relative_bill(tariff) -> np.ndarray:
            return imports @ _period_prices(tariff, hours) / cost0 - 1.0
    else:
        mean_kw = np.maximum(population["annual_kwh"].values / 8760.0, 1e-3)
        p0 = max(_mean_price(current), 1e-9)

        def relative_bill(tariff) -> np.ndarray:
            return np.full(n, _mean_price(tariff) / p0 - 1.0)
    rows = []
    for tariff in scenario.offers.tariffs:
        bill = relative_bill(tariff)
        for contract in [None, *scenario.offers.curtailment]:
            kw = 0.0 if contract is None else contract.kw
            discomfort = np.minimum(kw / (2.0 * mean_kw), 1.0) * 0.5
            events = np.zeros(n) if contract is None else np.full(n, contract.max_events)
            rows.append(np.column_stack([
                bill, discomfort, event_excess(events, comfort), voltage,
                fairness(bill + discomfort, segment),
            ]))
    return np.vstack(rows)


def baseline_satisfaction(
    population: xr.Dataset,
    scenario: Scenario,
    *,
    weights: np.ndarray | None = None,
    vm_pu: np.ndarray | None = None,
    profiles: xr.Dataset | None = None,
) -> xr.Dataset:
    """Add ``satisfaction_before[customer]``, ``satisfaction_weight[factor]`` and the baseline
    factor scores ``satisfaction_factor[customer, factor]``.

    Parameters
    ----------
    population
        Customers.
    scenario
        ``satisfaction.weighting`` and ``satisfaction.voltage_band_pu``.
    weights
        Factor weights (order `FACTORS`); default computed over `candidate_factor_matrix`.
    vm_pu
        Voltage at each customer's bus ``[customer, time]`` [p.u.] from the power flow, if known
        (`customer_voltage` maps the power flow's ``vm_pu[time, bus]``).
    profiles
        Simulated ``p_kw[customer, time]``; sharpens the bill-change column of the weighting
        matrix (TOU tariffs priced on the customer's own load).
    """
    n = population.sizes["customer"]
    voltage = (np.zeros(n) if vm_pu is None
               else voltage_outside_share(vm_pu, scenario.satisfaction.voltage_band_pu))
    if weights is None:
        weights = factor_weights(
            score_factors(candidate_factor_matrix(population, scenario, voltage, profiles)),
            scenario.satisfaction.weighting,
        )
    raw = np.zeros((n, len(FACTORS)))
    raw[:, FACTORS.index("voltage_quality")] = voltage
    scores = score_factors(raw)
    out = population.copy()
    out = out.assign_coords(factor=np.asarray(FACTORS, dtype="<U16"))
    out["satisfaction_weight"] = ("factor", np.asarray(weights, dtype=np.float64),
                                  {"units": "1", "long_name": "satisfaction factor weight",
                                   "method": scenario.satisfaction.weighting})
    out["satisfaction_factor"] = (("customer", "factor"), scores,
                                  {"units": "1", "long_name": "baseline factor score"})
    out["voltage_outside_share"] = ("customer", voltage,
                                    {"units": "1", "long_name": "time share outside voltage band"})
    out["satisfaction_before"] = ("customer", satisfaction_index(scores, weights),
                                  {"units": "1", "long_name": "satisfaction before offers"})
    return out
