"""Behavioural response to offers: TOU shifting, curtailment with rebound, acceptance, fatigue.

Pure array functions (NumPy, vectorized over customers); the offers module and the evaluation
replay call them. Loads are ``[customer, time]`` in kW; ``step_h`` is the step length [h].

TOU response follows the self/cross price-elasticity matrix of the PRISM model used to analyse
the California Statewide Pricing Pilot and the later pilot surveys (Faruqui & George 2005,
*Electricity Journal* 18(3):53–63; Faruqui & Sergici 2010, *J. Regulatory Economics*
38:193–225), whose households show own-price elasticities of peak demand around −0.05…−0.15 and
substitution elasticities around 0.05…0.10 — the scenario's defaults (−0.10, 0.04) sit inside
that range. Daily energy is conserved up to the stated conservation effect: energy that leaves
a period either returns in the relatively cheaper periods or, for the share
``conservation_effect``, is not consumed at all.
"""

from __future__ import annotations

import math

import numpy as np

from scenarios.schema import ResponseConfig, Tariff

#: Logit shift of acceptance by credit tier [-]: customers asked for a deposit or paid only on
#: performance sign up less.
TIER_ACCEPTANCE_SHIFT: dict[str, float] = {"A": 0.0, "B": -0.1, "C": -0.3, "D": -0.5}
#: Logit coefficient on (baseline satisfaction − 0.5) [-]: satisfied customers trust offers more.
SATISFACTION_ACCEPTANCE_COEF = 2.0
#: Share of a security deposit the customer perceives as a cost [-].
DEPOSIT_COST_SHARE = 0.25


def step_hours(time: np.ndarray) -> np.ndarray:
    """Hour of day of each ``datetime64`` step [h]."""
    t = np.asarray(time, dtype="datetime64[ns]")
    day = t.astype("datetime64[D]")
    return (t - day).astype("timedelta64[s]").astype(np.float64) / 3600.0


def step_days(time: np.ndarray) -> np.ndarray:
    """Day number of each step, 0 for the first day of ``time``."""
    d = np.asarray(time, dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    return d - d.min()


def step_prices(hours: np.ndarray, tariff: Tariff) -> np.ndarray:
    """Energy price of each step [EUR/kWh] (the period containing the step's start)."""
    if tariff.kind == "flat":
        return np.full(len(hours), float(tariff.price_eur_per_kwh or 0.0))
    prices = np.empty(len(hours))
    for period in tariff.periods:
        mask = (hours >= period.start_h) & (hours < period.end_h)
        prices[mask] = period.price_eur_per_kwh
    return prices


def price_segments(old_price: np.ndarray, new_price: np.ndarray, hours: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group steps by their (old, new) price pair.

    Returns ``segment[T]`` ids, the log price change ``r[K]`` of each segment and its share of
    the day's hours ``share[K]``.
    """
    pairs = np.column_stack([old_price, new_price])
    unique, segment = np.unique(pairs, axis=0, return_inverse=True)
    segment = segment.reshape(-1)
    old = np.maximum(unique[:, 0], 1e-9)
    new = np.maximum(unique[:, 1], 1e-9)
    r = np.log(new / old)
    share = np.bincount(segment, minlength=len(unique)).astype(np.float64)
    return segment, r, share / share.sum()


def _segment_energy(load: np.ndarray, key: np.ndarray, groups: int) -> np.ndarray:
    """Sum ``load[n, T]`` over steps sharing a key → ``[n, groups]``."""
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    sums = np.add.reduceat(load[:, order], starts, axis=1)
    out = np.zeros((load.shape[0], groups))
    out[:, sorted_key[starts]] = sums
    return out


def tou_response(
    gross_kw: np.ndarray,
    day: np.ndarray,
    segment: np.ndarray,
    r: np.ndarray,
    share: np.ndarray,
    config: ResponseConfig,
    elasticity_scale: np.ndarray,
) -> np.ndarray:
    """Gross load after a price change, by the self/cross elasticity matrix, per day.

    With ``E[d, k]`` the energy of price segment ``k`` on day ``d``, the raw response is
    ``E'_k = E_k·(1 + s·(ε_own·r_k + ε_cross·r̄_−k))`` where ``r_k = ln(p_new/p_old)`` and
    ``r̄_−k`` is the hour-weighted mean log price change of the other segments; ``s`` is the
    customer's ``elasticity_scale``. Then per day the decreases ``D = Σ (E − E')⁺`` return to
    the increasing segments scaled to ``(1 − c)·D`` (or, if none increases, to the segments with
    the lowest ``r`` in proportion to their energy), ``c`` = ``conservation_effect``, so that
    ``Σ_k E''_k = Σ_k E_k − c·D``. Each step is scaled by ``E''_k / E_k`` of its segment (energy
    moved into a segment without load is spread evenly over its steps).

    Parameters
    ----------
    gross_kw
        Consumption before ``[customer, time]`` [kW], ≥ 0.
    day, segment
        Day number and price segment of each step (`step_days`, `price_segments`).
    r, share
        Log price change and hour share of each segment.
    config
        ``own_elasticity``, ``cross_elasticity``, ``conservation_effect``.
    elasticity_scale
        Per-customer multiplier on the elasticities [-].

    Returns
    -------
    np.ndarray
        Consumption after ``[customer, time]`` [kW], ≥ 0.
    """
    gross = np.maximum(np.asarray(gross_kw, dtype=np.float64), 0.0)
    k = len(r)
    if k == 0 or np.all(np.abs(r) < 1e-12):
        return gross.copy()
    others = np.array([
        (np.dot(share, r) - share[j] * r[j]) / max(1.0 - share[j], 1e-12) for j in range(k)
    ])
    impulse = config.own_elasticity * r + config.cross_elasticity * others          # [K]
    scale = np.asarray(elasticity_scale, dtype=np.float64)[:, None]
    ratio = np.maximum(1.0 + scale * impulse[None, :], 0.0)                         # [n, K]

    days = int(day.max()) + 1
    key = day * k + segment
    energy = _segment_energy(gross, key, days * k).reshape(len(gross), days, k)
    raw = energy * ratio[:, None, :]
    dec = np.maximum(energy - raw, 0.0).sum(axis=2, keepdims=True)
    gain = np.maximum(raw - energy, 0.0)
    inc = gain.sum(axis=2, keepdims=True)
    c = config.conservation_effect
    returned = (1.0 - c) * dec
    cheapest = (r <= r.min() + 1e-12).astype(np.float64)
    fallback_base = energy * cheapest[None, None, :]
    fallback_total = fallback_base.sum(axis=2, keepdims=True)
    loss = np.maximum(energy - raw, 0.0)
    # If nothing rises, the energy goes to the cheapest segments: by their energy, or evenly
    # over their hours when they hold no load yet.
    cheap_share = (share * cheapest / (share * cheapest).sum())[None, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        by_gain = np.where(inc > 0, gain / inc, 0.0)
        by_energy = np.where(fallback_total > 0, fallback_base / fallback_total, cheap_share)
    receive = returned * np.where(inc > 0, by_gain, by_energy)
    final = (energy - loss + receive).reshape(len(gross), days * k)
    energy = energy.reshape(len(gross), days * k)
    steps = np.bincount(key, minlength=days * k).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(energy > 0, final / energy, 1.0)
        # Load moved into a segment that had none is spread evenly over its steps.
        added = np.where(energy > 0, 0.0, final / np.maximum(steps, 1.0)[None, :])
    return gross * factor[:, key] + added[:, key]


def event_blocks(event: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of True in ``event[T]`` as ``(start, stop)`` step ranges."""
    e = np.asarray(event, dtype=bool).astype(np.int8)
    edges = np.diff(np.r_[0, e, 0])
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(),
                    strict=True))


def trim_events(event: np.ndarray, steps: int) -> np.ndarray:
    """Each event block cut to at most ``steps`` central steps (a contract's own event length
    inside a longer event window centred on the peak)."""
    out = np.zeros(len(event), dtype=bool)
    for start, stop in event_blocks(event):
        keep = min(max(int(steps), 0), stop - start)
        first = start + (stop - start - keep) // 2
        out[first:first + keep] = True
    return out


def curtail(
    net_kw: np.ndarray,
    flexible_kw: np.ndarray,
    contract_kw: np.ndarray,
    event: np.ndarray,
    performance: np.ndarray,
    rebound_share: float,
    rebound_steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Load after curtailment events with rebound, and the delivered reduction.

    In event block ``b`` the reduction is ``min(kW_contract, flexible[t], max(net[t], 0))·perf[b]``
    — never more than the flexible load, never pushing the net import below zero. After the block
    ``rebound_share`` of the block's curtailed energy is paid back evenly over the next
    ``rebound_steps`` steps (truncated at the end of the window).

    Parameters
    ----------
    net_kw, flexible_kw
        ``[customer, time]`` [kW].
    contract_kw
        Contracted curtailment per customer [kW] (0 for no contract).
    event
        ``[time]`` bool, event steps.
    performance
        ``[customer, block]`` delivered share per event block [-] (0 = opted out / not called).
    rebound_share
        Share of curtailed energy paid back [-].
    rebound_steps
        Payback length [steps].

    Returns
    -------
    (net_after [customer, time] [kW], delivered [customer, time] [kW])
    """
    net = np.asarray(net_kw, dtype=np.float64)
    flex = np.clip(np.asarray(flexible_kw, dtype=np.float64), 0.0, None)
    kw = np.asarray(contract_kw, dtype=np.float64)[:, None]
    after = net.copy()
    delivered = np.zeros_like(net)
    steps = net.shape[1]
    for b, (start, stop) in enumerate(event_blocks(event)):
        perf = np.clip(performance[:, b], 0.0, 1.0)[:, None]
        cut = np.minimum(np.minimum(kw, flex[:, start:stop]),
                         np.maximum(net[:, start:stop], 0.0)) * perf
        delivered[:, start:stop] += cut
        after[:, start:stop] -= cut
        end = min(stop + rebound_steps, steps)
        if end > stop and rebound_steps > 0:
            payback = rebound_share * cut.sum(axis=1, keepdims=True) / rebound_steps
            after[:, stop:end] += payback
    return after, delivered


def acceptance_probability(
    value_eur: np.ndarray,
    discomfort: np.ndarray,
    satisfaction: np.ndarray,
    tier: np.ndarray,
    config: ResponseConfig,
    *,
    deposit_eur: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Probability that a customer accepts an offer (binary logit).

    ``u = β0 + β_eur·(value − κ·deposit) − β_dis·discomfort + β_sat·(satisfaction − ½) + δ_tier``,
    ``P = 1 / (1 + e^(−u))`` — the standard discrete-choice form for DR programme enrolment
    (Train, *Discrete Choice Methods with Simulation*, 2009, ch. 3). β0, β_eur, β_dis from
    ``scenario.response``; κ = `DEPOSIT_COST_SHARE`, β_sat and δ_tier module constants.

    Parameters
    ----------
    value_eur
        Offer value for the season: bill saving + incentive [EUR] (broadcasts).
    discomfort
        Expected discomfort [-] (0 none, ~1 high).
    satisfaction
        Baseline satisfaction [0-1].
    tier
        Credit tier letters.
    """
    shift = np.vectorize(TIER_ACCEPTANCE_SHIFT.get, otypes=[float])(np.asarray(tier))
    u = (config.acceptance_intercept
         + config.acceptance_per_eur * (np.asarray(value_eur) - DEPOSIT_COST_SHARE
                                        * np.asarray(deposit_eur))
         - config.acceptance_per_discomfort * np.asarray(discomfort)
         + SATISFACTION_ACCEPTANCE_COEF * (np.asarray(satisfaction) - 0.5)
         + shift)
    return 1.0 / (1.0 + np.exp(-np.clip(u, -50.0, 50.0)))


def opt_out_probability(events_called: np.ndarray | int, fatigue_per_event: float) -> np.ndarray:
    """Probability of opting out before the next event after ``events_called`` events [-]."""
    return np.clip(fatigue_per_event * np.asarray(events_called, dtype=np.float64), 0.0, 1.0)


def event_survival(events: int, fatigue_per_event: float) -> np.ndarray:
    """Probability of still taking part in event b = 0..events−1: ``S_b = Π_{j=1..b}(1 − f·j)``
    (before event b a customer opts out with probability ``f·b``, see `opt_out_probability`)."""
    stay = 1.0 - opt_out_probability(np.arange(events), fatigue_per_event)
    return np.cumprod(stay)


def expected_performance(config: ResponseConfig) -> float:
    """Mean delivered share ``E[clip(X, 0, 1)]`` for ``X ~ N(mean, sd)`` [-].

    ``E[clip(X,0,1)] = E[(X)⁺] − E[(X − 1)⁺]`` with ``E[(X − a)⁺] = (μ − a)Φ(z) + σφ(z)``,
    ``z = (μ − a)/σ``.
    """
    mu, sd = config.performance_mean, config.performance_sd
    if sd == 0:
        return float(min(max(mu, 0.0), 1.0))

    def excess(a: float) -> float:
        z = (mu - a) / sd
        cdf = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
        pdf = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        return (mu - a) * cdf + sd * pdf

    return excess(0.0) - excess(1.0)


def draw_performance(uniform_a: np.ndarray, uniform_b: np.ndarray, config: ResponseConfig
                     ) -> np.ndarray:
    """Delivered share per event from two uniforms (Box–Muller), N(mean, sd) clipped to [0, 1]."""
    z = np.sqrt(-2.0 * np.log(uniform_a)) * np.cos(2.0 * np.pi * uniform_b)
    return np.clip(config.performance_mean + config.performance_sd * z, 0.0, 1.0)


def expected_event_performance(blocks: int, max_events: int, config: ResponseConfig
                               ) -> np.ndarray:
    """Expected delivered share of each called event block ``b`` of a contract [-].

    The expectation of `draw_event_performance`: ``E[perf_b·active_b] = E[clip(X,0,1)]·S_b``
    for ``b < max_events`` (performance and opting out are independent draws) and 0 beyond the
    contract's events. `curtail` is linear in the performance, so the expected load after the
    events is `curtail` with this share — exact, no sampling.
    """
    survival = event_survival(max(blocks, 1), config.fatigue_per_event)[:blocks]
    return expected_performance(config) * survival * (np.arange(blocks) < max_events)


def draw_event_performance(
    opt_out_uniform: np.ndarray, performance_a: np.ndarray, performance_b: np.ndarray,
    max_events: int, config: ResponseConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """One draw of each customer's delivered share per called event block [-].

    Before block ``b`` a customer still taking part opts out for good with probability
    `opt_out_probability` ``(b)``; a customer taking part delivers a N(mean, sd) share clipped to
    [0, 1] (`draw_performance`); blocks past ``max_events`` deliver nothing.

    Parameters
    ----------
    opt_out_uniform, performance_a, performance_b
        ``[customer, block]`` uniforms on (0, 1).

    Returns
    -------
    (performance [customer, block], events taken part in [customer])
    """
    n, blocks = opt_out_uniform.shape
    perf = np.zeros((n, blocks))
    active = np.ones(n, dtype=bool)
    called = np.zeros(n)
    for b in range(min(blocks, max_events)):
        active &= opt_out_uniform[:, b] >= opt_out_probability(b, config.fatigue_per_event)
        perf[:, b] = np.where(active, draw_performance(performance_a[:, b], performance_b[:, b],
                                                       config), 0.0)
        called += active
    return perf, called
