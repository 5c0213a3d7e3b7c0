"""Offer menu, eligibility, per customer × offer expectations and the Monte-Carlo replay."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.offers import (
    build_offer_menu,
    build_offer_problem,
    offer_eligibility,
    replay_offers,
)
from scenarios.errors import InputError
from tests.customers.feeder_case import feeder_case, make_scenario

#: Energy bookkeeping tolerance of the expected load changes [kWh relative].
ENERGY_RTOL = 1e-9


@pytest.fixture(scope="module")
def case():
    scenario, population, profiles, design = feeder_case()
    return scenario, population, profiles, design, build_offer_problem(
        scenario, population, profiles, design)


def _events(profiles, design):
    events = np.zeros(profiles.sizes["time"], bool)
    index = profiles.get_index("time").get_indexer(design["time"].values)
    events[index[design["event"].values]] = True
    return events


def test_menu_is_tariffs_times_contracts_with_status_quo_first():
    menu = build_offer_menu(make_scenario())
    assert menu["offer"].values.tolist() == [
        "flat", "flat + cut2", "flat + cut5biz", "tou", "tou + cut2", "tou + cut5biz"]
    assert menu["tariff"].values.tolist() == ["flat"] * 3 + ["tou"] * 3
    assert menu["contract"].values.tolist() == ["none", "cut2", "cut5biz"] * 2
    assert menu["status_quo"].values.tolist() == [True] + [False] * 5
    assert menu["contract_kw"].attrs["units"] == "kW"


def test_problem_shapes_and_invariants(case):
    scenario, population, _, design, problem = case
    n, k, t = population.sizes["customer"], 6, design.sizes["time"]
    assert problem.shape == (n, k, t)
    for name in ("acceptance", "incentive_eur", "bill_change_eur", "revenue_change_eur",
                 "bad_debt_eur", "satisfaction", "eligible"):
        assert getattr(problem, name).shape == (n, k), name
    assert np.isfinite(problem.delta_kw).all()
    np.testing.assert_array_equal(problem.delta_kw[:, 0], 0.0)
    assert (problem.acceptance[:, 0] == 1).all()
    assert ((problem.acceptance > 0) & (problem.acceptance <= 1)).all()
    assert (problem.incentive_eur >= 0).all() and (problem.incentive_eur[:, 0] == 0).all()
    assert ((problem.satisfaction >= 0) & (problem.satisfaction <= 1)).all()
    np.testing.assert_allclose(problem.satisfaction[:, 0], population["satisfaction_before"])
    assert (problem.bad_debt_eur >= 0).all()
    np.testing.assert_array_equal(problem.customer_ids, population["customer"].values)


def test_curtailment_lowers_design_load_at_events(case):
    _, _, _, design, problem = case
    event = design["event"].values
    assert event.any()
    names = problem.offer_names
    for k, name in enumerate(names):
        if "+" not in name:
            continue
        # Per accepting customer: the contract cuts at events below its tariff alone.
        tariff = names.index(name.split(" + ")[0])
        with_cut = problem.delta_kw[:, k][:, event] / problem.acceptance[:, k, None]
        alone = problem.delta_kw[:, tariff][:, event] / problem.acceptance[:, tariff, None]
        assert (with_cut <= alone + 1e-9).all(), name
        assert with_cut.sum() < alone.sum(), name
        if tariff == 0:
            assert (with_cut <= 1e-12).all(), name
    # Cutting load on every design day's peak lowers the expected design peak.
    everyone = problem.base_kw + problem.delta_kw[:, 1].sum(axis=0)
    assert everyone.max() < problem.base_kw.max()


def test_tou_shifts_energy_and_lowers_its_peak_period(case):
    _, _, profiles, design, problem = case
    k = problem.offer_names.index("tou")
    delta = problem.delta_kw[:, k]
    hours = design.get_index("time").hour
    peak = (hours >= 17) & (hours < 21)
    assert delta[:, peak].sum() < 0
    assert delta[:, ~peak].sum() > 0
    # Over the design days the energy moved is conserved up to the conservation effect.
    base_energy = profiles["p_kw"].sel(time=design["time"]).clip(min=0).sum().item()
    assert -delta.sum() <= 0.01 * base_energy + ENERGY_RTOL * base_energy


def test_eligibility_rules():
    scenario = make_scenario(credit={"policies": {
        "A": {},
        "B": {},
        "C": {"eligible_offers": ["flat", "tou", "none"]},
        "D": {"eligible_offers": ["flat", "none", "cut2"]},
    }})
    _, population, _, _ = feeder_case()
    population = population.copy()
    tier = np.array(list("ABCD") * (population.sizes["customer"] // 4))
    population["tier"] = ("customer", tier, {"units": "1"})
    eligible = offer_eligibility(scenario, population)
    seg = population["segment"].values
    biz = np.isin(seg, ["commercial", "industrial"])
    assert eligible[:, 0].all()
    np.testing.assert_array_equal(eligible[tier == "A", 2], biz[tier == "A"])
    np.testing.assert_array_equal(eligible[tier == "A", 1], True)
    assert not eligible[tier == "C", 1].any() and eligible[tier == "C", 3].all()
    assert eligible[tier == "D", 1].all() and not eligible[tier == "D", 3].any()
    assert not eligible[tier == "D", 4].any()


def test_pay_for_performance_tiers_get_no_upfront_incentive(case):
    scenario, population, profiles, design, problem = case
    tier = population["tier"].values
    k = problem.offer_names.index("flat + cut5biz")
    pfp = np.array([scenario.credit.policies[t].pay_for_performance_only for t in tier])
    # cut5biz pays only up front: pay-for-performance customers are paid nothing.
    np.testing.assert_array_equal(problem.incentive_eur[pfp, k], 0.0)
    cap = np.array([scenario.credit.policies[t].incentive_cap_eur for t in tier])
    assert (problem.incentive_eur[:, k] <= problem.acceptance[:, k] * np.minimum(cap, 200.0)
            + 1e-9).all()


def test_replay_is_deterministic_per_draw_and_customer(case):
    scenario, population, profiles, design, problem = case
    choice = np.where(problem.eligible[:, 4], 4, 0)
    events = _events(profiles, design)
    a = replay_offers(scenario, population, profiles, choice, events, draw=3,
                      acceptance=problem.acceptance[np.arange(len(choice)), choice])
    b = replay_offers(scenario, population, profiles, choice, events, draw=3,
                      acceptance=problem.acceptance[np.arange(len(choice)), choice])
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    other = replay_offers(scenario, population, profiles, choice, events, draw=4)
    assert not np.array_equal(a.accepted, other.accepted)
    # A customer's draw does not depend on the others: replay a subset alone.
    part = slice(0, 40)
    alone = replay_offers(scenario, population.isel(customer=part), profiles.isel(customer=part),
                          choice[part], events, draw=3,
                          acceptance=problem.acceptance[np.arange(40), choice[part]])
    np.testing.assert_array_equal(alone.accepted, a.accepted[part])
    np.testing.assert_allclose(alone.p_kw, a.p_kw[part], rtol=1e-12)
    # Decliners keep their load; accepters on the contract cut load at events.
    p = profiles["p_kw"].values
    np.testing.assert_array_equal(a.p_kw[~a.accepted], p[~a.accepted])
    assert a.accepted.any()
    assert (a.p_kw[a.accepted][:, events].sum() < p[a.accepted][:, events].sum())
    assert (a.incentive_eur[~a.accepted] == 0).all()
    assert ((a.satisfaction >= 0) & (a.satisfaction <= 1)).all()


def test_missing_credit_fields_is_an_input_error(case):
    scenario, population, profiles, design, _ = case
    with pytest.raises(InputError, match="tier"):
        build_offer_problem(scenario, population.drop_vars("tier"), profiles, design)


def test_fatigue_and_max_events_limit_delivery(case):
    scenario, population, profiles, design, problem = case
    n = population.sizes["customer"]
    choice = np.full(n, 1)                           # everyone on flat + cut2
    events = _events(profiles, design)
    blocks = [(s, e) for s, e in __import__("customers.response", fromlist=["x"]).event_blocks(
        events)]
    assert len(blocks) == 2
    sure = np.ones(n)

    def delivered(s):
        replay = replay_offers(s, population, profiles, choice, events, draw=0, acceptance=sure)
        cut = profiles["p_kw"].values - replay.p_kw
        return [cut[:, a:b].sum() for a, b in blocks]

    calm = delivered(scenario)
    tired = delivered(scenario.model_copy(update={
        "response": scenario.response.model_copy(update={"fatigue_per_event": 0.5})}))
    assert tired[0] == pytest.approx(calm[0], rel=1e-12)   # nobody opts out before event 1
    assert tired[1] < 0.75 * calm[1]
    one = scenario.model_copy(update={"offers": scenario.offers.model_copy(update={
        "curtailment": [scenario.offers.curtailment[0].model_copy(update={"max_events": 1}),
                        scenario.offers.curtailment[1]]})})
    limited = delivered(one)
    assert limited[0] > 0 and limited[1] <= 0.0


def test_problem_is_invariant_to_customer_order(case):
    scenario, population, profiles, design, problem = case
    reverse = slice(None, None, -1)
    flipped = build_offer_problem(scenario, population.isel(customer=reverse),
                                  profiles.isel(customer=reverse), design)
    for name in ("delta_kw", "acceptance", "incentive_eur", "bill_change_eur", "bad_debt_eur",
                 "satisfaction", "eligible"):
        np.testing.assert_allclose(getattr(flipped, name)[::-1], getattr(problem, name),
                                   rtol=1e-12, atol=1e-12, err_msg=name)


def test_a_shorter_contract_curtails_only_its_own_event_hours(case):
    scenario, population, profiles, design, _ = case
    short = scenario.model_copy(update={"offers": scenario.offers.model_copy(update={
        "curtailment": [scenario.offers.curtailment[0].model_copy(update={"event_h": 1.0}),
                        scenario.offers.curtailment[1]]})})
    problem = build_offer_problem(short, population, profiles, design)
    event = design["event"].values
    cut = problem.delta_kw[:, 1] < -1e-12
    assert cut.any()
    # The 1-h contract cuts at most the central 4 quarter-hours of each day's event window.
    assert (cut.any(axis=0) <= event).all()
    assert cut.any(axis=0).sum() <= 4 * scenario.time.design_days < event.sum()


def test_transformer_inputs_pass_through(case):
    scenario, population, profiles, design, _ = case
    n, t = population.sizes["customer"], design.sizes["time"]
    one = design.assign(
        trafo_base_kw=(("time", "trafo"), design["base_kw"].values[:, None], {"units": "kW"}),
        trafo_limit_kw=("trafo", [400.0], {"units": "kW"}),
    )
    problem = build_offer_problem(scenario, population, profiles, one)
    assert problem.trafo_customer.shape == (1, n) and (problem.trafo_customer == 1).all()
    assert problem.trafo_base_kw.shape == (t, 1)
    np.testing.assert_array_equal(problem.trafo_limit_kw, [400.0])
    two = design.assign(
        trafo_base_kw=(("time", "trafo"), np.ones((t, 2)), {"units": "kW"}),
        trafo_limit_kw=("trafo", [400.0, 300.0], {"units": "kW"}),
    )
    with pytest.raises(InputError, match="trafo_share"):
        build_offer_problem(scenario, population, profiles, two)
