"""Response parameters fitted from measured events (M&V results of `scenarios.mv`).

From the best baseline's result of every (customer, event) with a contracted curtailment:

- an event is an **opt-out** when the delivered share (reduction / contracted kW) is below
  `OPT_OUT_SHARE` — halfway between no response and a typical delivery, so that baseline
  noise rarely flips either;
- ``performance_mean`` = mean delivered share of the other events; ``performance_sd`` = their
  spread net of the baseline's own error: ``sd² = var(share) − mean((rrmse·baseline_kw /
  contracted_kw)²)``, the measurement-error correction of a variance (the baseline's relative
  RMSE on non-event days is its error on a single event);
- ``fatigue_per_event`` ``f``: `customers.response` lets a customer still taking part opt out
  for good before event ``b`` (0, 1, …) with probability ``f·b``; the customer's first
  opt-out ends its participation. With ``n_b`` customers still in before their event ``b`` and
  ``d_b`` of them opting out there, the least-squares fit of the hazard through the origin,
  weighted by ``n_b``, is ``f = Σ d_b·b / Σ n_b·b²`` (binomial standard error from the
  fitted hazards);
- ``rebound_share`` = Σ payback energy above the baseline in the ``rebound_h`` hours after the
  events / Σ curtailed energy, over delivered events.

Each estimate comes with its standard error and is clipped to the bounds of
`scenarios.schema.ResponseConfig`; `response_toml` writes the ``[response]`` table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scenarios.errors import InputError

OPT_OUT_SHARE = 0.4
MAX_CONDITION = 20.0  # largest condition number at which own and cross are fitted together
#: (lowest, highest) allowed by `scenarios.schema.ResponseConfig`.
BOUNDS = {"performance_mean": (1e-3, 1.0), "performance_sd": (0.0, 0.5),
          "rebound_share": (0.0, 1.5), "fatigue_per_event": (0.0, 0.5)}


def fit_response(events: pd.DataFrame, *, rebound_h: float = 2.0) -> dict[str, dict[str, float]]:
    """Fit delivered share, its spread, fatigue and rebound from M&V event rows.

    Parameters
    ----------
    events
        Rows of `scenarios.mv.measure_events` (``best``, ``customer_id``, ``date``,
        ``reduction_kw``, ``reduction_kwh``, ``rebound_kwh``, ``contracted_kw``,
        ``delivered_share``, ``baseline_kw``, ``rrmse_pct``).
    rebound_h
        The payback period the rows were measured over [h] (written to the table).

    Returns
    -------
    dict
        Parameter name → ``{"value": …, "se": …}`` plus ``"events"`` and ``"opt_outs"`` counts.
    """
    rows = events[events["best"] & np.isfinite(events["contracted_kw"])].copy()
    if len(rows) < 10:
        raise InputError(f"response fit: {len(rows)} measured events with a contracted_kw; "
                         "need at least 10 (give contracted_kw in the events file)")
    rows = rows.sort_values(["customer_id", "date"], kind="stable")
    rows["called_before"] = rows.groupby("customer_id").cumcount()
    share = rows["delivered_share"].to_numpy(dtype=float)
    opt_out = share < OPT_OUT_SHARE
    delivered = rows[~opt_out]
    s = delivered["delivered_share"].to_numpy(dtype=float)
    if len(s) < 5:
        raise InputError(f"response fit: only {len(s)} of {len(rows)} events delivered at least "
                         f"{OPT_OUT_SHARE:.0%} of the contracted kW; nothing to fit")
    noise = (delivered["rrmse_pct"].to_numpy(float) / 100.0
             * delivered["baseline_kw"].to_numpy(float)
             / delivered["contracted_kw"].to_numpy(float))
    noise_var = float(np.nanmean(noise**2))
    variance = float(np.var(s, ddof=1))
    sd = float(np.sqrt(max(variance - noise_var, 0.0)))

    # Each customer is at risk until its first opt-out (inclusive), then out for good.
    rows["opt_out"] = opt_out
    first_out = rows["opt_out"].astype(int).groupby(rows["customer_id"]).cummax()
    at_risk = (first_out.groupby(rows["customer_id"]).shift(1, fill_value=0) == 0).to_numpy()
    b = rows["called_before"].to_numpy(dtype=float)[at_risk]
    d = opt_out[at_risk].astype(float)
    denominator = float((b**2).sum())
    fatigue = float((d * b).sum() / denominator) if denominator > 0 else 0.0
    hazard = np.clip(fatigue * b, 0.0, 1.0)
    fatigue_se = (float(np.sqrt((b**2 * hazard * (1.0 - hazard)).sum())) / denominator
                  if denominator > 0 else float("nan"))

    curtailed = delivered["reduction_kwh"].to_numpy(float)
    payback = delivered["rebound_kwh"].to_numpy(float)
    ratio = float(payback.sum() / curtailed.sum()) if curtailed.sum() > 0 else 0.0
    # Standard error of a ratio estimator (delta method, customers-events as units).
    ratio_se = float(np.std(payback - ratio * curtailed, ddof=1) * np.sqrt(len(curtailed))
                     / max(curtailed.sum(), 1e-12))
    fitted = {
        "performance_mean": (float(s.mean()), float(s.std(ddof=1) / np.sqrt(len(s)))),
        "performance_sd": (sd, float(sd / np.sqrt(2.0 * max(len(s) - 1, 1)))),
        "fatigue_per_event": (fatigue, fatigue_se),
        "rebound_share": (ratio, ratio_se),
    }
    out: dict[str, dict[str, float]] = {}
    for name, (value, se) in fitted.items():
        lo, hi = BOUNDS[name]
        out[name] = {"value": float(np.clip(value, lo, hi)), "se": se}
    out["rebound_h"] = {"value": float(rebound_h), "se": 0.0}
    out["counts"] = {"events": float(len(rows)), "opt_outs": float(opt_out.sum())}
    return out


def response_toml(fit: dict[str, dict[str, float]], source: str) -> str:
    """The fitted parameters as a ``[response]`` table (standard errors as comments)."""
    counts = fit["counts"]
    lines = [f"# Fitted by gridflex mv from {source}: {int(counts['events'])} customer-events, "
             f"{int(counts['opt_outs'])} opt-outs.",
             "# Copy into a scenario; the other [response] fields keep their defaults.",
             "[response]"]
    for name in ("performance_mean", "performance_sd", "fatigue_per_event", "rebound_share",
                 "rebound_h"):
        value, se = fit[name]["value"], fit[name]["se"]
        comment = f"  # standard error {se:.3g}" if name != "rebound_h" else "  # measured over"
        lines.append(f"{name} = {value:.4g}{comment}")
    return "\n".join(lines) + "\n"


def fit_tou_elasticity(
    clean: pd.DataFrame, tou_customers: set[str], switch: pd.Timestamp, old_tariff, new_tariff,
    *, cross_elasticity: float = 0.04, bootstrap: int = 200, seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Own and cross price elasticities from meter data before and after a tariff change.

    Customers in ``tou_customers`` moved from ``old_tariff`` to ``new_tariff`` at ``switch``;
    the others stayed (the control group: season and weather cancel in the difference in
    differences — provided the two groups respond alike to them, e.g. customers moved at
    random; a group richer in electric heating than the other biases the result). With ``E`` the energy of price segment ``k`` (steps sharing an (old, new)
    price pair, `customers.response.price_segments`) summed over a group, the response ratio

        ``ρ_k = (E_after / E_before)_moved / (E_after / E_before)_stayed``

    of every segment whose energy fell is, in the model of `customers.response.tou_response`
    (energy that falls is not topped up by the redistribution), ``ρ_k − 1 = ε_own·r_k +
    ε_cross·r̄_−k`` with ``r_k`` the log price change and ``r̄_−k`` the hour-weighted mean of the
    other segments'. Least squares over those segments gives both elasticities when two or more
    segments fell with price changes that separate the two (condition number of the design at
    most `MAX_CONDITION`); else ``ε_own`` with ``ε_cross`` held at ``cross_elasticity``, and
    the result says so. Standard errors: bootstrap over customers.

    Parameters
    ----------
    clean
        Screened long frame (``customer_id``, ``timestamp``, ``kwh``), one interval length.
    tou_customers
        IDs of the customers who changed tariff.
    cross_elasticity
        Held fixed when only one price segment fell (e.g. the scenario's) [-].
    switch
        First day on the new tariff (local midnight).
    old_tariff, new_tariff
        `scenarios.schema.Tariff` before and after.
    """
    from customers.response import price_segments, step_hours, step_prices

    frame = clean.dropna(subset=["kwh"])
    hours = step_hours(frame["timestamp"].to_numpy())
    segment, r, share = price_segments(step_prices(hours, old_tariff),
                                       step_prices(hours, new_tariff), hours)
    others = np.array([(share @ r - share[j] * r[j]) / max(1.0 - share[j], 1e-12)
                       for j in range(len(r))])
    after = (frame["timestamp"] >= switch).to_numpy()
    moved = frame["customer_id"].isin(tou_customers).to_numpy()
    if not moved.any() or moved.all():
        raise InputError("tou fit: need customers who changed tariff and customers who did not")
    if not after.any() or after.all():
        raise InputError(f"tou fit: the meter data must cover days before and after {switch.date()}")
    ids, customer = np.unique(frame["customer_id"].to_numpy(), return_inverse=True)
    # energy[customer, period (0 before, 1 after), segment]
    energy = np.zeros((len(ids), 2, len(r)))
    np.add.at(energy, (customer, after.astype(int), segment), frame["kwh"].to_numpy(float))
    group = np.zeros(len(ids), dtype=bool)
    group[np.unique(customer[moved])] = True

    def solve(weights: np.ndarray) -> tuple[np.ndarray, list[int]]:
        total = (energy * weights[:, None, None])
        treated, control = total[group].sum(axis=0), total[~group].sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = (treated[1] / treated[0]) / (control[1] / control[0])
        fell = [k for k in range(len(r)) if np.isfinite(rho[k]) and rho[k] < 1.0 and r[k] != 0]
        if not fell:
            return np.array([np.nan, np.nan]), fell
        a = np.column_stack([r[fell], others[fell]])
        # One tariff change rarely separates the two: the other segments' mean change moves
        # with the segment's own, so the columns are nearly collinear.
        if len(fell) < 2 or np.linalg.cond(a) > MAX_CONDITION:
            rest = rho[fell] - 1.0 - cross_elasticity * others[fell]
            return np.array([float((rest @ r[fell]) / (r[fell] @ r[fell])), np.nan]), fell
        coef, *_ = np.linalg.lstsq(a, rho[fell] - 1.0, rcond=None)
        return coef, fell

    estimate, fell = solve(np.ones(len(ids)))
    if not np.isfinite(estimate[0]):
        raise InputError("tou fit: no price segment's energy fell among the customers who "
                         "changed tariff; nothing to fit")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(bootstrap):
        weights = np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids))
        draws.append(solve(weights.astype(float))[0])
    draws_array = np.array(draws)
    spread = np.array([np.std(col[np.isfinite(col)], ddof=1) if np.isfinite(col).sum() > 1
                       else np.nan for col in draws_array.T])
    out = {"own_elasticity": {"value": float(np.clip(estimate[0], -1.0, 0.0)),
                              "se": float(spread[0])},
           "counts": {"moved": float(group.sum()), "stayed": float((~group).sum()),
                      "segments_fell": float(len(fell))}}
    if np.isfinite(estimate[1]):
        out["cross_elasticity"] = {"value": float(np.clip(estimate[1], 0.0, 1.0)),
                                   "se": float(spread[1])}
    return out
