"""Seeded synthetic offer problems of realistic shape, for tests and benchmarks.

Customers come from a handful of archetypes (residential with/without EV or heat pump,
commercial) with lognormal size and per-customer noise, so that alike customers exist (as on a
real feeder) without being identical. The menu is the status quo, two TOU tariffs, curtailment
contracts and their combinations. Responses follow the same rules as `customers.response`
in spirit: TOU shifts peak-window energy to the night (a little is conserved), curtailment
removes min(contracted kW, flexible load) × performance in an evening event window and pays
part of it back afterwards (rebound); everything is weighted by an acceptance probability
from a logit over value and discomfort.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from optimizer.problem import OfferProblem

TIERS = np.array(["A", "B", "C", "D"])
TIER_SHARES = (0.5, 0.3, 0.15, 0.05)
ARREARS_BY_TIER = np.array([0.02, 0.05, 0.15, 0.35])
#: (name, TOU peak-price ratio or 0, curtailment kW or 0, up-front incentive EUR)
MENU = (
    ("status-quo", 0.0, 0.0, 0.0),
    ("tou-mild", 1.5, 0.0, 0.0),
    ("tou-strong", 2.5, 0.0, 0.0),
    ("curtail-1kw", 0.0, 1.0, 40.0),
    ("curtail-2kw", 0.0, 2.0, 80.0),
    ("curtail-4kw", 0.0, 4.0, 150.0),
    ("tou-mild+curtail-1kw", 1.5, 1.0, 40.0),
    ("tou-mild+curtail-2kw", 1.5, 2.0, 80.0),
    ("tou-strong+curtail-1kw", 2.5, 1.0, 40.0),
    ("tou-strong+curtail-2kw", 2.5, 2.0, 80.0),
    ("tou-mild+curtail-4kw", 1.5, 4.0, 150.0),
    ("tou-strong+curtail-4kw", 2.5, 4.0, 150.0),
)


def _daily_shape(hours: np.ndarray, peak_h: float, width_h: float) -> np.ndarray:
    d = np.minimum(np.abs(hours - peak_h), 24 - np.abs(hours - peak_h))
    return np.exp(-0.5 * (d / width_h) ** 2)


def synthetic_problem(
    customers: int,
    offers: int = 10,
    steps: int = 96,
    *,
    seed: int = 0,
    trafos: int = 0,
    lines: int = 0,
    trafo_dense: bool = False,
    budget_eur: float = np.inf,
    satisfaction_floor_mean: float = 0.0,
    peak_value_eur_per_kw: float = 60.0,
) -> OfferProblem:
    """A seeded synthetic `OfferProblem`.

    Parameters
    ----------
    customers, offers, steps
        Sizes ``n``, ``k`` (2–12) and ``t`` (design steps spread over whole days; 96 steps is
        one day at 15 min or two days at 30 min).
    trafos
        Number of transformers; customers are split between them, each limit halfway between
        the transformer's base peak and what its strongest peak-cutting offers reach (so the
        rows bind but a feasible assignment exists). ``trafo_dense`` fills
        ``trafo_delta_kw`` [n, k, t, r] instead of the ``trafo_customer`` incidence.
    lines
        Number of lines of a radial chain feeder (line ``l`` carries every customer at
        position ≥ l along it); limits at 98 % of each line's base peak flow.
    """
    if not 2 <= offers <= len(MENU):
        raise ValueError(f"offers must be 2..{len(MENU)}")
    rng = np.random.default_rng(seed)
    n, k, t = customers, offers, steps
    days = max(1, t // 48)
    step_h = 24.0 * days / t
    hours = (np.arange(t) * step_h) % 24.0
    archetype = rng.choice(4, size=n, p=(0.55, 0.15, 0.15, 0.15))
    # Archetype profiles [4, t]: residential, residential+EV, residential+heat pump, commercial.
    evening = _daily_shape(hours, 19.0, 2.0)
    morning = _daily_shape(hours, 7.5, 1.5)
    day = _daily_shape(hours, 13.0, 3.5)
    ev = _daily_shape(hours, 19.5, 1.2)
    shapes = np.stack(
        [
            0.25 + 0.9 * evening + 0.4 * morning,
            0.25 + 0.9 * evening + 0.4 * morning + 2.5 * ev,
            0.8 + 1.2 * evening + 0.9 * morning,
            0.4 + 2.5 * day + 0.3 * evening,
        ]
    )
    flex_share = np.array([0.15, 0.55, 0.45, 0.2])
    size = rng.lognormal(0.0, 0.35, size=n) * np.array([1.0, 1.0, 1.3, 2.5])[archetype]
    noise = 1.0 + 0.08 * rng.standard_normal((n, t))
    load = np.clip(shapes[archetype] * size[:, None] * noise, 0.0, None)       # [n, t] kW
    flexible = load * flex_share[archetype, None]
    peak_window = (hours >= 17.0) & (hours < 21.0)
    night = (hours >= 23.0) | (hours < 6.0)
    event = (hours >= 18.0) & (hours < 20.0)
    rebound = (hours >= 20.0) & (hours < 22.0)
    tier = rng.choice(4, size=n, p=TIER_SHARES)
    comfort = rng.uniform(0.5, 1.5, size=n)
    delta = np.zeros((n, k, t))
    acceptance = np.zeros((n, k))
    incentive = np.zeros((n, k))
    bill = np.zeros((n, k))
    satisfaction = np.zeros((n, k))
    eligible = np.ones((n, k), dtype=bool)
    base_sat = np.clip(0.72 + 0.08 * rng.standard_normal(n), 0.3, 0.98)
    season_days = 90.0
    price = 0.30
    for j, (_, ratio, kw, fee) in enumerate(MENU[:k]):
        shift = np.zeros((n, t))
        if ratio > 0:
            moved = 0.06 * (ratio - 1.0) * load * peak_window
            energy = moved.sum(axis=1, keepdims=True)
            shift += -moved + 0.98 * energy * night / max(night.sum(), 1)
        cut = np.zeros((n, t))
        if kw > 0:
            cut = -np.minimum(kw, flexible) * event * 0.85
            paid_back = -cut.sum(axis=1, keepdims=True) * 0.5
            cut = cut + paid_back * rebound / max(rebound.sum(), 1)
        response = shift + cut
        saving_eur = -(response * step_h).sum(axis=1) / days * season_days * price * (ratio > 0)
        discomfort = (-cut.clip(max=0).sum(axis=1) * step_h / days) / comfort + 0.05 * (ratio > 1.9)
        value = saving_eur + fee
        p_accept = 1.0 / (1.0 + np.exp(-(-1.0 + 0.02 * value - 2.0 * discomfort)))
        if j == 0:
            p_accept = np.ones(n)
        acceptance[:, j] = p_accept
        delta[:, j] = p_accept[:, None] * response
        incentive[:, j] = p_accept * fee
        bill[:, j] = -p_accept * saving_eur
        satisfaction[:, j] = np.clip(
            base_sat + p_accept * (0.004 * saving_eur + 0.002 * fee - 0.25 * discomfort), 0.0, 1.0
        )
        if j > 0:
            eligible[:, j] &= ~((tier == 3) & (kw > 0))      # tier D: no curtailment incentive
            eligible[:, j] &= ~((tier == 2) & (kw >= 4.0))   # tier C: no large contract
            eligible[:, j] &= ~((archetype == 3) & (ratio > 2.0))  # commercial: no strong TOU
    bad_debt = ARREARS_BY_TIER[tier, None] * (incentive + 0.1 * np.abs(bill))
    base_kw = load.sum(axis=0)
    fields: dict = {}
    if trafos:
        owner = rng.integers(0, trafos, size=n)
        onehot = np.zeros((trafos, n))
        onehot[owner, np.arange(n)] = 1.0
        trafo_base = (onehot @ load).T                                    # [t, r]
        fields["trafo_base_kw"] = trafo_base
        # Limit each transformer between its base peak and what the offer that cuts its own
        # peak step most achieves, so that assignment stays feasible and the rows bind.
        limits = np.empty(trafos)
        for r in range(trafos):
            members = owner == r
            at = int(np.argmax(trafo_base[:, r]))
            cut = np.where(eligible[members], delta[members][:, :, at], np.inf).argmin(axis=1)
            change = delta[members][np.arange(members.sum()), cut].sum(axis=0)   # [t]
            limits[r] = np.maximum(trafo_base[:, r] + change, trafo_base[:, r] + 0.5 * change).max()
        fields["trafo_limit_kw"] = limits
        if trafo_dense:
            fields["trafo_delta_kw"] = delta[:, :, :, None] * onehot.T[:, None, None, :]
        else:
            fields["trafo_customer"] = sp.csr_array(onehot)
    if lines:
        position = rng.integers(0, lines, size=n)
        downstream = (position[None, :] >= np.arange(lines)[:, None]).astype(float)  # [l, n]
        line_base = (downstream @ load).T
        fields["line_customer"] = sp.csr_array(downstream)
        fields["line_base_kw"] = line_base
        fields["line_limit_kw"] = 0.98 * np.abs(line_base).max(axis=0)
    return OfferProblem(
        customer_ids=np.arange(n, dtype=np.int64) + 1000,
        offer_names=tuple(name for name, *_ in MENU[:k]),
        base_kw=base_kw,
        delta_kw=delta,
        acceptance=acceptance,
        incentive_eur=incentive,
        bill_change_eur=bill,
        revenue_change_eur=bill.copy(),
        bad_debt_eur=bad_debt,
        satisfaction=satisfaction,
        eligible=eligible,
        step_h=step_h,
        peak_value_eur_per_kw=peak_value_eur_per_kw,
        budget_eur=budget_eur,
        satisfaction_floor_mean=satisfaction_floor_mean,
        customer_tier=TIERS[tier],
        customer_segment=np.where(archetype == 3, "commercial", "residential"),
        **fields,
    )
