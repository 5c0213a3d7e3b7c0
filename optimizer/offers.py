"""The offer menu and the per customer × offer expectations the optimizer consumes.

An *offer* is a tariff × curtailment contract pair ("none" included); offer 0 is the status quo
(current tariff, no contract). For every customer and offer, `build_offer_problem` predicts from
the simulated profiles, through `customers.response`:

- the load change on the design steps if the customer accepts (TOU shifting over the whole
  window, then curtailment at the design events with the mean performance and rebound), weighted
  by the acceptance probability (logit over the offer's value and discomfort);
- the bill change over the window scaled to the season, the incentive (up-front capped by the
  credit tier's policy, nothing up front for pay-for-performance tiers, plus payment per
  curtailed kWh), the tariff-revenue change, the expected bad debt and the predicted satisfaction;
- eligibility from the tier policy and the contract's segments.

`replay_offers` draws one Monte-Carlo realization of the chosen offers for the evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import xarray as xr

from customers.credit import ARREARS_WINDOW_MONTHS, LOSS_GIVEN_ARREARS
from customers.population import keyed_uniform
from customers.response import (
    acceptance_probability,
    curtail,
    draw_event_performance,
    event_blocks,
    event_survival,
    expected_event_performance,
    price_segments,
    step_days,
    step_hours,
    step_prices,
    tou_response,
    trim_events,
)
from customers.satisfaction import (
    FACTORS,
    event_excess,
    factor_weights,
    fairness,
    satisfaction_index,
    score_factors,
)
from optimizer.problem import OfferProblem
from scenarios.errors import InputError
from scenarios.schema import CurtailmentContract, Scenario, Tariff
from sim.dataset import validate

HOURS_PER_MONTH = 730.0
#: Largest number of customer × step values processed at once (memory bound).
CHUNK_VALUES = 4_000_000
CREDIT_FIELDS = ("tier", "arrears_probability", "satisfaction_before")


@dataclass(frozen=True)
class MenuItem:
    tariff: Tariff
    contract: CurtailmentContract | None

    @property
    def name(self) -> str:
        if self.contract is None:
            return self.tariff.name
        return f"{self.tariff.name} + {self.contract.name}"


def menu_items(scenario: Scenario) -> list[MenuItem]:
    """Offers in menu order: status quo first, then tariff-major × (none, contracts...)."""
    tariffs = {t.name: t for t in scenario.offers.tariffs}
    current = tariffs[scenario.offers.current_tariff]
    items = [MenuItem(current, None)]
    for tariff in scenario.offers.tariffs:
        for contract in [None, *scenario.offers.curtailment]:
            if tariff.name == current.name and contract is None:
                continue
            items.append(MenuItem(tariff, contract))
    names = [i.name for i in items]
    repeated = sorted({x for x in names if names.count(x) > 1})
    if repeated:
        raise InputError(f"offers: offer names collide ({', '.join(repeated)}); rename a tariff "
                         "or contract")
    return items


def build_offer_menu(scenario: Scenario) -> xr.Dataset:
    """The menu as a Dataset over ``offer`` (position 0 = current tariff, no contract).

    The ``offer`` coordinate holds the offer names (``"tariff"`` or ``"tariff + contract"``).
    Variables: ``tariff``, ``contract`` (``"none"`` for no contract), ``contract_kw`` [kW],
    ``max_events`` [-], ``event_h`` [h], ``incentive_eur`` (up-front) [EUR],
    ``payment_eur_per_kwh`` [EUR/kWh], ``status_quo`` (bool).
    """
    items = menu_items(scenario)
    c = [i.contract for i in items]
    ds = xr.Dataset(coords={"offer": np.array([i.name for i in items], dtype=str)})
    ds["tariff"] = ("offer", np.array([i.tariff.name for i in items], dtype=str), {"units": "1"})
    ds["contract"] = ("offer", np.array([x.name if x else "none" for x in c], dtype=str),
                      {"units": "1"})
    ds["contract_kw"] = ("offer", np.array([x.kw if x else 0.0 for x in c]), {"units": "kW"})
    ds["max_events"] = ("offer", np.array([x.max_events if x else 0 for x in c], np.int64),
                        {"units": "1"})
    ds["event_h"] = ("offer", np.array([x.event_h if x else 0.0 for x in c]), {"units": "h"})
    ds["incentive_eur"] = ("offer", np.array([x.incentive_eur if x else 0.0 for x in c]),
                           {"units": "EUR"})
    ds["payment_eur_per_kwh"] = ("offer",
                                 np.array([x.payment_eur_per_kwh if x else 0.0 for x in c]),
                                 {"units": "EUR/kWh"})
    ds["status_quo"] = ("offer", np.arange(len(items)) == 0, {"units": "bool"})
    return validate(ds, stage="offers")


def offer_eligibility(scenario: Scenario, population: xr.Dataset) -> np.ndarray:
    """``[customer, offer]`` bool: the tier policy lists both the offer's tariff and contract
    (``"none"`` for no contract) or is ``"all"``, and the contract serves the customer's
    segment. Offer 0 is always eligible."""
    items = menu_items(scenario)
    tier = population["tier"].values
    segment = population["segment"].values
    eligible = np.ones((len(tier), len(items)), dtype=bool)
    for k, item in enumerate(items):
        contract = item.contract.name if item.contract else "none"
        for name, policy in scenario.credit.policies.items():
            allowed = policy.eligible_offers
            if allowed != "all" and not (item.tariff.name in allowed and contract in allowed):
                eligible[tier == name, k] = False
        if item.contract is not None:
            eligible[~np.isin(segment, item.contract.segments), k] = False
    eligible[:, 0] = True
    return eligible


def _require(population: xr.Dataset) -> None:
    missing = [f for f in CREDIT_FIELDS if f not in population]
    if missing:
        raise InputError(
            "population lacks " + ", ".join(missing)
            + ": run customers.credit.assess_credit and "
            "customers.satisfaction.baseline_satisfaction first"
        )


def _step_h(profiles: xr.Dataset) -> float:
    if "step_h" in profiles.attrs:
        return float(profiles.attrs["step_h"])
    t = profiles["time"].values
    return float((t[1] - t[0]) / np.timedelta64(1, "h")) if len(t) > 1 else 1.0


@dataclass(frozen=True)
class _Window:
    """Calendar of the simulated window shared by every tariff response."""

    hours: np.ndarray
    days: np.ndarray
    step_h: float
    months: float
    current: Tariff
    current_price: np.ndarray

    @classmethod
    def of(cls, scenario: Scenario, profiles: xr.Dataset) -> _Window:
        time = profiles["time"].values
        hours = step_hours(time)
        step_h = _step_h(profiles)
        current = next(t for t in scenario.offers.tariffs
                       if t.name == scenario.offers.current_tariff)
        return cls(hours, step_days(time), step_h, len(time) * step_h / HOURS_PER_MONTH,
                   current, step_prices(hours, current))

    def bill(self, net_kw: np.ndarray, tariff: Tariff, price: np.ndarray) -> np.ndarray:
        """Import bill over the window [EUR]: Σ max(net, 0)·price·Δt + standing charge."""
        energy_cost = np.maximum(net_kw, 0.0) @ price * self.step_h
        return energy_cost + tariff.fixed_eur_per_month * self.months

    def respond(self, gross: np.ndarray, tariff: Tariff, scale: np.ndarray, scenario: Scenario
                ) -> tuple[np.ndarray, np.ndarray]:
        """Gross load under ``tariff`` and its step prices."""
        price = step_prices(self.hours, tariff)
        if np.array_equal(price, self.current_price):
            return gross, price
        segment, r, share = price_segments(self.current_price, price, self.hours)
        return tou_response(gross, self.days, segment, r, share, scenario.response, scale), price


def _chunks(n: int, steps: int) -> list[slice]:
    size = max(1, CHUNK_VALUES // max(steps, 1))
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _policy_arrays(scenario: Scenario, tier: np.ndarray) -> tuple[np.ndarray, ...]:
    policies = scenario.credit.policies
    cap = np.array([policies[t].incentive_cap_eur for t in tier])
    deposit = np.array([policies[t].deposit_eur for t in tier])
    pfp = np.array([policies[t].pay_for_performance_only for t in tier])
    return cap, deposit, pfp


def contract_events(scenario: Scenario, events: np.ndarray, step_h: float) -> np.ndarray:
    """Each contract's own event steps ``[contract, time]`` (contracts in menu order).

    ``events`` is either ``[contract, time]`` already (the dispatch's calls per contract) or
    ``[time]`` event windows, each contract then curtailing the central ``event_h`` of every
    window (`customers.response.trim_events`).
    """
    events = np.asarray(events, dtype=bool)
    contracts = scenario.offers.curtailment
    if events.ndim == 2:
        if events.shape[0] != len(contracts):
            raise InputError(f"events has {events.shape[0]} contract rows, the menu "
                             f"{len(contracts)} contracts")
        return events
    return np.array([trim_events(events, max(1, round(c.event_h / step_h))) for c in contracts],
                    dtype=bool).reshape(len(contracts), len(events))


class _Response(NamedTuple):
    """An accepted offer's effect on a group of customers over the window."""

    net_kw: np.ndarray        # [n, T] net load after the tariff and the events [kW]
    tariff_kw: np.ndarray     # [n, T] net load after the tariff only [kW]
    delivered_kw: np.ndarray  # [n, T] curtailment delivered [kW]
    price: np.ndarray         # [T] energy price of the offer's tariff [EUR/kWh]
    shifted: np.ndarray       # [n] share of energy moved by the tariff [-]


def _tariff_response(window: _Window, tariff: Tariff, p: np.ndarray, pv: np.ndarray,
                     flex: np.ndarray, scale: np.ndarray, scenario: Scenario):
    """Net load, flexible load, prices and shifted share under ``tariff`` (one definition)."""
    gross = np.maximum(p + pv, 0.0)
    g, price = window.respond(gross, tariff, scale, scenario)
    with np.errstate(divide="ignore", invalid="ignore"):
        flex_t = np.minimum(np.where(gross > 0, flex * g / gross, 0.0), g)
    shifted = 0.5 * np.abs(g - gross).sum(axis=1) / np.maximum(gross.sum(axis=1), 1e-9)
    return g - pv, flex_t, price, shifted


def _respond(tariffed, contract: CurtailmentContract | None, own: np.ndarray | None,
             performance: np.ndarray | None, scenario: Scenario, step_h: float) -> _Response:
    """The one behaviour model: the tariff response, then the contract's called events with the
    given delivered share per block (drawn in the replay, its expectation in the optimizer)."""
    net_t, flex_t, price, shifted = tariffed
    if contract is None or own is None or not own.any():
        return _Response(net_t, net_t, np.zeros_like(net_t), price, shifted)
    cfg = scenario.response
    after, delivered = curtail(net_t, flex_t, np.full(len(net_t), contract.kw), own, performance,
                               cfg.rebound_share, int(round(cfg.rebound_h / step_h)))
    return _Response(after, net_t, delivered, price, shifted)


def _season_factor(blocks: int, max_events: int, cfg) -> float:
    """Season's expected participating events over the window's [-]: window delivery × this is
    the season's (the window is a sample of the season; each contract's events last it)."""
    survival = event_survival(max(blocks, max_events, 1), cfg.fatigue_per_event)
    window = float(survival[:min(blocks, max_events)].sum())
    return float(survival[:max_events].sum()) / window if window > 0 else 0.0


def build_offer_problem(
    scenario: Scenario,
    population: xr.Dataset,
    profiles: xr.Dataset,
    design: xr.Dataset,
    events: np.ndarray | None = None,
) -> OfferProblem:
    """Per customer × offer expectations over the design steps.

    Parameters
    ----------
    scenario
        Menu, response, credit policy, objective and limits.
    population
        Customers with credit fields (``tier``, ``arrears_probability``) and
        ``satisfaction_before`` (optionally ``satisfaction_weight[factor]`` and
        ``voltage_outside_share``).
    profiles
        Full window ``p_kw``, ``flexible_kw``, ``pv_kw`` ``[customer, time]`` [kW].
    design
        Design steps (dim ``time``): ``base_kw[time]`` feeder-head load [kW], ``event[time]``
        bool (event windows centred on the peaks; each contract curtails the central
        ``event_h`` of each window, `customers.response.trim_events`); optional ``trafo_base_kw[time, trafo]`` [kW] with ``trafo_share[customer, trafo]``
        (share of the customer's load through each trafo, default 1 for a single trafo) and
        ``trafo_limit_kw[trafo]`` or ``trafo_sn_kva[trafo]``; attr ``season_scale`` (how many
        windows make a season, default 1).
    events
        The steps each contract is called over the whole window ``[contract, time]`` (the
        dispatch), or ``[time]`` event windows; default: the design's ``event`` steps.
        The expected change is computed over the whole window with exactly the events the
        replay calls (`replay_offers`), then read at the design steps.
    """
    _require(population)
    items = menu_items(scenario)
    window = _Window.of(scenario, profiles)
    season = float(design.attrs.get("season_scale", 1.0))
    index = profiles.get_index("time").get_indexer(design["time"].values)
    if (index < 0).any():
        raise InputError("design steps are not all in the simulated window")
    if events is None:
        events = np.zeros(profiles.sizes["time"], dtype=bool)
        events[index[design["event"].values.astype(bool)]] = True
    own_events = contract_events(scenario, events, window.step_h)
    contract_pos = {c.name: j for j, c in enumerate(scenario.offers.curtailment)}
    n, k, t = population.sizes["customer"], len(items), len(index)
    cfg = scenario.response

    tier = population["tier"].values
    p_arrears = population["arrears_probability"].values
    before = population["satisfaction_before"].values
    comfort = population["comfort_events"].values
    scale = population["elasticity_scale"].values
    voltage = (population["voltage_outside_share"].values if "voltage_outside_share" in population
               else np.zeros(n))
    cap, deposit, pfp = _policy_arrays(scenario, tier)

    delta = np.zeros((n, k, t))
    acceptance = np.ones((n, k))
    incentive = np.zeros((n, k))
    bill_change = np.zeros((n, k))
    at_risk_accept = np.zeros((n, k))
    raw = np.zeros((n, k, len(FACTORS)))
    base_bill = np.zeros(n)

    p_all = profiles["p_kw"].transpose("customer", "time")
    pv_all = profiles["pv_kw"].transpose("customer", "time")
    flex_all = profiles["flexible_kw"].transpose("customer", "time")
    for part in _chunks(n, profiles.sizes["time"]):
        net = p_all[part].values.astype(np.float64)
        pv = pv_all[part].values.astype(np.float64)
        flex = flex_all[part].values.astype(np.float64)
        b0 = window.bill(net, window.current, window.current_price)
        base_bill[part] = b0
        net0_design = net[:, index]
        tariff_cache: dict[str, tuple] = {}
        for j, item in enumerate(items):
            if j == 0:
                continue
            if item.tariff.name not in tariff_cache:
                tariff_cache[item.tariff.name] = _tariff_response(
                    window, item.tariff, net, pv, flex, scale[part], scenario)
            tariffed = tariff_cache[item.tariff.name]
            c = item.contract
            own = perf = None
            if c is not None:
                own = own_events[contract_pos[c.name]]
                blocks = len(event_blocks(own))
                perf = np.broadcast_to(expected_event_performance(blocks, c.max_events, cfg),
                                       (len(net), blocks))
            r = _respond(tariffed, c, own, perf, scenario, window.step_h)
            bill_t = window.bill(r.tariff_kw, item.tariff, r.price)
            bill_season = (bill_t - b0) * season
            curtailed_kwh = np.zeros(len(net))
            cut_share = np.zeros(len(net))
            events_n = np.zeros(len(net))
            upfront = np.zeros(len(net))
            incentive_accept = np.zeros(len(net))
            if c is not None:
                factor = _season_factor(len(event_blocks(own)), c.max_events, cfg)
                curtailed_kwh = r.delivered_kw.sum(axis=1) * window.step_h * factor
                money = (np.maximum(r.net_kw, 0.0) - np.maximum(r.tariff_kw, 0.0)) @ r.price
                bill_season = bill_season + money * window.step_h * factor
                # Not called in this window: no delivery, no discomfort counted here.
                load_at_events = np.maximum(r.tariff_kw[:, own], 0.0).sum(axis=1)
                cut_share = r.delivered_kw[:, own].sum(axis=1) / np.maximum(load_at_events, 1e-9)
                events_n = np.full(len(net), float(c.max_events))
                upfront = np.where(pfp[part], 0.0, np.minimum(c.incentive_eur, cap[part]))
                incentive_accept = upfront + c.payment_eur_per_kwh * curtailed_kwh
            discomfort = r.shifted + cut_share * events_n / np.maximum(comfort[part], 1)
            a = acceptance_probability(-bill_season + incentive_accept, discomfort, before[part],
                                       tier[part], scenario.response, deposit_eur=deposit[part])
            acceptance[part, j] = a
            delta[part, j, :] = a[:, None] * (r.net_kw[:, index] - net0_design)
            incentive[part, j] = a * incentive_accept
            bill_change[part, j] = a * bill_season
            season_bill = b0 * season + bill_season
            at_risk_accept[part, j] = upfront + _bill_at_risk(season_bill, window.months * season)
            relative = bill_season / np.maximum(b0 * season, 1e-9)
            raw[part, j, FACTORS.index("bill_change")] = relative
            raw[part, j, FACTORS.index("discomfort")] = r.shifted + cut_share
            raw[part, j, FACTORS.index("event_excess")] = event_excess(events_n, comfort[part])
    raw[:, :, FACTORS.index("voltage_quality")] = voltage[:, None]
    burden = raw[:, :, FACTORS.index("bill_change")] + raw[:, :, FACTORS.index("discomfort")]
    raw[:, :, FACTORS.index("fairness")] = fairness(burden, population["segment"].values)
    scores = score_factors(raw)
    weights = (population["satisfaction_weight"].values if "satisfaction_weight" in population
               else factor_weights(scores.reshape(-1, len(FACTORS)), scenario.satisfaction.weighting))
    accepted_satisfaction = satisfaction_index(scores, weights)
    satisfaction = acceptance * accepted_satisfaction + (1.0 - acceptance) * before[:, None]
    satisfaction[:, 0] = before

    at_risk_before = _bill_at_risk(base_bill * season, window.months * season)
    at_risk_accept[:, 0] = at_risk_before
    exposed = np.maximum(at_risk_accept - deposit[:, None] * (np.arange(k) > 0), 0.0)
    bad_debt = p_arrears[:, None] * (acceptance * exposed
                                     + (1.0 - acceptance) * at_risk_before[:, None])

    trafo_customer, trafo_base, trafo_limit = _trafo_arrays(design, scenario, n)
    base_revenue = float(base_bill.sum() * season)
    return OfferProblem(
        customer_ids=population["customer"].values.astype(np.int64),
        offer_names=tuple(i.name for i in items),
        base_kw=design["base_kw"].values.astype(np.float64),
        delta_kw=delta,
        acceptance=acceptance,
        incentive_eur=incentive,
        bill_change_eur=bill_change,
        revenue_change_eur=bill_change.copy(),
        bad_debt_eur=bad_debt,
        satisfaction=satisfaction,
        eligible=offer_eligibility(scenario, population),
        step_h=window.step_h,
        peak_value_eur_per_kw=scenario.objective.peak_value_eur_per_kw,
        incentive_weight=scenario.objective.incentive_weight,
        bad_debt_weight=scenario.objective.bad_debt_weight,
        satisfaction_value_eur=scenario.objective.satisfaction_value_eur,
        budget_eur=scenario.limits.budget_eur,
        satisfaction_floor_mean=scenario.limits.satisfaction_floor_mean,
        satisfaction_floor_customer=scenario.limits.satisfaction_floor_customer,
        revenue_band_eur=scenario.limits.revenue_change_pct / 100.0 * base_revenue,
        trafo_customer=trafo_customer,
        trafo_base_kw=trafo_base,
        trafo_limit_kw=trafo_limit,
        customer_tier=population["tier"].values.astype("<U1"),
        customer_segment=population["segment"].values.astype("<U12"),
    )


def expected_offer_load(
    scenario: Scenario,
    population: xr.Dataset,
    profiles: xr.Dataset,
    choice: np.ndarray,
    acceptance: np.ndarray,
    events: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plan's expectation of the chosen offers over the whole window.

    The same response as `build_offer_problem` and `replay_offers` (`_respond` with the
    expected delivered share per event): customer ``i`` with acceptance ``a_i`` and accepted
    load change ``c_i[t]`` has expected change ``a_i·c_i[t]`` and, from the acceptance draw,
    variance ``a_i(1 − a_i)·c_i[t]²`` (the performance draws' own spread is left out).

    Returns
    -------
    (expected net load [customer, time] [kW], Σ_i expected change [time] [kW],
    Σ_i variance of the change [time] [kW²])
    """
    items = menu_items(scenario)
    choice = np.asarray(choice, dtype=np.int64)
    window = _Window.of(scenario, profiles)
    own_events = contract_events(scenario, events, window.step_h)
    contract_pos = {c.name: j for j, c in enumerate(scenario.offers.curtailment)}
    scale = population["elasticity_scale"].values
    p = profiles["p_kw"].transpose("customer", "time").values.astype(np.float64)
    pv = profiles["pv_kw"].transpose("customer", "time").values.astype(np.float64)
    flex = profiles["flexible_kw"].transpose("customer", "time").values.astype(np.float64)
    expected = p.copy()
    mean = np.zeros(p.shape[1])
    variance = np.zeros(p.shape[1])
    for k in np.unique(choice[choice > 0]).tolist():
        item = items[k]
        rows = np.flatnonzero(choice == k)
        for part in _chunks(len(rows), p.shape[1]):
            r_ = rows[part]
            tariffed = _tariff_response(window, item.tariff, p[r_], pv[r_], flex[r_], scale[r_],
                                        scenario)
            c = item.contract
            own = perf = None
            if c is not None:
                own = own_events[contract_pos[c.name]]
                blocks = len(event_blocks(own))
                perf = np.broadcast_to(
                    expected_event_performance(blocks, c.max_events, scenario.response),
                    (len(r_), blocks))
            change = _respond(tariffed, c, own, perf, scenario, window.step_h).net_kw - p[r_]
            a = np.asarray(acceptance, dtype=np.float64)[r_][:, None]
            expected[r_] += a * change
            mean += (a * change).sum(axis=0)
            variance += (a * (1.0 - a) * change**2).sum(axis=0)
    return expected, mean, variance


def _bill_at_risk(season_bill: np.ndarray, season_months: float) -> np.ndarray:
    """Bills of the arrears window that would be written off [EUR]."""
    share = min(ARREARS_WINDOW_MONTHS / max(season_months, 1e-9), 1.0)
    return LOSS_GIVEN_ARREARS * share * np.asarray(season_bill, dtype=np.float64)


def _trafo_arrays(design: xr.Dataset, scenario: Scenario, n: int):
    """Transformer incidence ``[trafo, customer]``, base load ``[time, trafo]`` and limit [kW]."""
    if "trafo_base_kw" not in design:
        return None, None, None
    base = design["trafo_base_kw"].transpose("time", "trafo").values.astype(np.float64)
    r = base.shape[1]
    if "trafo_share" in design:
        share = design["trafo_share"].transpose("customer", "trafo").values.astype(np.float64)
    elif r == 1:
        share = np.ones((n, 1))
    else:
        raise InputError("design has several trafos but no trafo_share[customer, trafo]")
    if "trafo_limit_kw" in design:
        limit = design["trafo_limit_kw"].values.astype(np.float64)
    elif "trafo_sn_kva" in design:
        limit = scenario.limits.trafo_loading_max_pct / 100.0 * design["trafo_sn_kva"].values
    else:
        raise InputError("design has trafo_base_kw but neither trafo_limit_kw nor trafo_sn_kva")
    return share.T.copy(), base, limit


# ----------------------------------------------------------------------------- replay
def _block_uniforms(seed: int, ids: np.ndarray, draw: int, blocks: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[customer, block]`` uniforms for opting out and the two performance draws, keyed by
    (seed, draw, customer id, block) so a customer's outcome never depends on the others."""
    def stack(key: str, *extra: int) -> np.ndarray:
        out = np.empty((len(ids), blocks))
        for b in range(blocks):
            out[:, b] = keyed_uniform(seed, key, ids, draw, b, *extra)
        return out

    return (stack("replay-optout"), stack("replay-performance", 0),
            stack("replay-performance", 1))


class Replay(NamedTuple):
    """One Monte-Carlo draw of the chosen offers."""

    p_kw: np.ndarray            # [customer, time] net active load after the offers [kW]
    accepted: np.ndarray        # [customer] bool
    incentive_eur: np.ndarray   # [customer] incentive paid, per season [EUR]
    satisfaction: np.ndarray    # [customer] satisfaction after [0-1]


def replay_offers(
    scenario: Scenario,
    population: xr.Dataset,
    profiles: xr.Dataset,
    choice: np.ndarray,
    events: np.ndarray,
    *,
    draw: int,
    acceptance: np.ndarray | None = None,
    season_scale: float = 1.0,
    vm_pu: np.ndarray | None = None,
) -> Replay:
    """One Monte-Carlo realization of the chosen offers over the whole window.

    Per customer (random numbers keyed by (seed, draw, customer id), so a customer's outcome does
    not depend on the others): acceptance ~ Bernoulli(P) with P the optimizer's acceptance of the
    chosen offer (``acceptance``) or recomputed from this window; the tariff response; for a
    contract, the first ``max_events`` event blocks are called, before the b-th one the customer
    opts out for good with probability ``fatigue_per_event·b``, each called event delivers
    ``min(kW, flexible, net)`` × a N(mean, sd) performance draw, and pays back ``rebound_share``
    over ``rebound_h``.

    Parameters
    ----------
    choice
        Offer index per customer (menu order of `build_offer_menu`).
    events
        ``[time]`` bool, event steps of the window.
    draw
        Draw number.
    acceptance
        ``[customer]`` acceptance probability of the chosen offer (``problem.acceptance[i,
        choice[i]]``); recomputed when omitted.
    season_scale
        Windows per season, to express incentives per season like the optimizer.
    vm_pu
        ``[customer, time]`` voltage at the customer's bus after the offers, if known.

    Returns
    -------
    Replay
        ``(p_kw, accepted, incentive_eur, satisfaction)`` — a NamedTuple, also unpackable.
    """
    _require(population)
    items = menu_items(scenario)
    choice = np.asarray(choice, dtype=np.int64)
    if choice.shape != (population.sizes["customer"],) or (choice < 0).any() \
            or (choice >= len(items)).any():
        raise InputError("choice must hold one valid offer index per customer")
    window = _Window.of(scenario, profiles)
    own_events = contract_events(scenario, events, window.step_h)
    contract_pos = {c.name: j for j, c in enumerate(scenario.offers.curtailment)}
    ids = population["customer"].values
    n = len(ids)
    tier = population["tier"].values
    comfort = population["comfort_events"].values
    before = population["satisfaction_before"].values
    scale = population["elasticity_scale"].values
    cap, deposit, pfp = _policy_arrays(scenario, tier)
    cfg = scenario.response

    p = profiles["p_kw"].transpose("customer", "time").values.astype(np.float64)
    pv = profiles["pv_kw"].transpose("customer", "time").values.astype(np.float64)
    flex = profiles["flexible_kw"].transpose("customer", "time").values.astype(np.float64)
    after = p.copy()
    accepted = np.zeros(n, dtype=bool)
    incentive = np.zeros(n)
    raw = np.zeros((n, len(FACTORS)))
    u_accept = keyed_uniform(scenario.seed, "replay-accept", ids, draw)
    for k in np.unique(choice[choice > 0]).tolist():
        item = items[k]
        rows = np.flatnonzero(choice == k)
        tariffed = _tariff_response(window, item.tariff, p[rows], pv[rows], flex[rows],
                                    scale[rows], scenario)
        c = item.contract
        own = perf = None
        called = np.zeros(len(rows))
        cut_share = np.zeros(len(rows))
        upfront = np.zeros(len(rows))
        season_kwh = np.zeros(len(rows))
        payment = 0.0
        if c is not None:
            own = own_events[contract_pos[c.name]]
            blocks = len(event_blocks(own))
            perf, called = draw_event_performance(
                *_block_uniforms(scenario.seed, ids[rows], draw, blocks), c.max_events, cfg)
        r = _respond(tariffed, c, own, perf, scenario, window.step_h)
        if c is not None:
            # Realized delivery scaled to the season as the optimizer does (`_season_factor`).
            factor = _season_factor(len(event_blocks(own)), c.max_events, cfg)
            season_kwh = r.delivered_kw.sum(axis=1) * window.step_h * factor
            load_at_events = np.maximum(r.tariff_kw[:, own], 0.0).sum(axis=1)
            cut_share = r.delivered_kw[:, own].sum(axis=1) / np.maximum(load_at_events, 1e-9)
            upfront = np.where(pfp[rows], 0.0, np.minimum(c.incentive_eur, cap[rows]))
            payment = c.payment_eur_per_kwh
        b0 = window.bill(p[rows], window.current, window.current_price)
        bill_after = window.bill(r.net_kw, item.tariff, r.price)
        events_season = np.minimum(called * season_scale, c.max_events if c else 0)
        paid = upfront + payment * season_kwh
        shifted = r.shifted
        if acceptance is None:
            value = -(bill_after - b0) * season_scale + paid
            discomfort = shifted + cut_share * events_season / np.maximum(comfort[rows], 1)
            prob = acceptance_probability(value, discomfort, before[rows], tier[rows], cfg,
                                          deposit_eur=deposit[rows])
        else:
            prob = np.asarray(acceptance, dtype=np.float64)[rows]
        yes = u_accept[rows] < prob
        accepted[rows] = yes
        after[rows[yes]] = r.net_kw[yes]
        incentive[rows[yes]] = paid[yes]
        rel = (bill_after - b0) / np.maximum(b0, 1e-9)
        raw[rows[yes], FACTORS.index("bill_change")] = rel[yes]
        raw[rows[yes], FACTORS.index("discomfort")] = (shifted + cut_share)[yes]
        raw[rows[yes], FACTORS.index("event_excess")] = event_excess(events_season, comfort[rows])[yes]
    if vm_pu is not None:
        from customers.satisfaction import voltage_outside_share

        raw[:, FACTORS.index("voltage_quality")] = voltage_outside_share(
            vm_pu, scenario.satisfaction.voltage_band_pu)
    elif "voltage_outside_share" in population:
        raw[:, FACTORS.index("voltage_quality")] = population["voltage_outside_share"].values
    burden = raw[:, FACTORS.index("bill_change")] + raw[:, FACTORS.index("discomfort")]
    raw[:, FACTORS.index("fairness")] = fairness(burden, population["segment"].values)
    weights = (population["satisfaction_weight"].values if "satisfaction_weight" in population
               else np.full(len(FACTORS), 1.0 / len(FACTORS)))
    satisfaction_after = satisfaction_index(score_factors(raw), weights)
    return Replay(after, accepted, incentive, satisfaction_after)
