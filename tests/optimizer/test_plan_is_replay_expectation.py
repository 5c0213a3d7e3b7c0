"""The plan is the expectation of the replay: the optimizer's expected change per customer, offer
and step equals the mean of many Monte-Carlo replay draws, within sampling error."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.offers import build_offer_problem, expected_offer_load, replay_offers
from tests.customers.feeder_case import feeder_case

#: Replay draws averaged; the tolerance is a number of standard errors of their mean.
DRAWS = 300
STANDARD_ERRORS = 4.5


@pytest.fixture(scope="module")
def case():
    scenario, population, profiles, design = feeder_case(seed=11, count=60)
    # Per-contract calls over the whole window: cut2 on a day outside the design set first and
    # then on both design days, so the expectation has to follow the contract's own events and
    # its fatigue across them (the design days are its 2nd and 3rd events); cut5biz elsewhere.
    time = profiles.get_index("time")
    events = np.zeros((2, len(time)), dtype=bool)
    hour = time.hour
    days = time.normalize()
    design_days = np.unique(design.get_index("time").normalize())
    other = [d for d in np.unique(days) if d not in design_days][0]
    assert other < design_days[1]
    events[0] = (days.isin(design_days) | (days == other)) & (hour >= 17) & (hour < 19)
    events[1] = ((days == other) | (days == design_days[1])) & (hour >= 18) & (hour < 20)
    noisy = scenario.model_copy(update={"response": scenario.response.model_copy(update={
        "fatigue_per_event": 0.3, "performance_sd": 0.3})})
    problem = build_offer_problem(noisy, population, profiles, design, events)
    return noisy, population, profiles, design, events, problem


def _replay_changes(scenario, population, profiles, choice, events, acceptance, index):
    p = profiles["p_kw"].transpose("customer", "time").values
    out = np.empty((DRAWS, len(index)))
    for draw in range(DRAWS):
        replay = replay_offers(scenario, population, profiles, choice, events, draw=draw,
                               acceptance=acceptance)
        out[draw] = (replay.p_kw - p)[:, index].sum(axis=0)
    return out


@pytest.mark.parametrize("offer", [1, 3, 4])
def test_expected_change_is_the_mean_of_replay_draws(case, offer):
    """Everyone eligible gets offer ``offer`` (flat + cut2, tou, tou + cut2): per design step, the
    optimizer's Σ_i Δ[i, offer, t] lies within 4.5 standard errors of the replay mean."""
    scenario, population, profiles, design, events, problem = case
    n = population.sizes["customer"]
    choice = np.where(problem.eligible[:, offer], offer, 0)
    assert (choice > 0).sum() >= 3
    acceptance = problem.acceptance[np.arange(n), choice]
    index = profiles.get_index("time").get_indexer(design["time"].values)
    draws = _replay_changes(scenario, population, profiles, choice, events, acceptance, index)
    planned = problem.delta_kw[np.arange(n), choice, :].sum(axis=0)
    mean = draws.mean(axis=0)
    error = draws.std(axis=0, ddof=1) / np.sqrt(DRAWS)
    assert np.abs(planned).max() > 0.5     # the case has a change worth checking [kW]
    assert (np.abs(mean - planned) <= STANDARD_ERRORS * error + 1e-9).all(), (
        np.max(np.abs(mean - planned) / np.maximum(error, 1e-12)))


def test_window_expectation_matches_the_problem_and_the_replay(case):
    """`expected_offer_load` (the plan over the whole window) agrees with the problem on the
    design steps exactly, and with the replay's mean everywhere within sampling error."""
    scenario, population, profiles, design, events, problem = case
    n = population.sizes["customer"]
    choice = np.where(problem.eligible[:, 4], 4, 0)
    acceptance = problem.acceptance[np.arange(n), choice]
    _, mean_change, variance = expected_offer_load(scenario, population, profiles, choice,
                                                   acceptance, events)
    index = profiles.get_index("time").get_indexer(design["time"].values)
    np.testing.assert_allclose(mean_change[index],
                               problem.delta_kw[np.arange(n), choice, :].sum(axis=0),
                               rtol=1e-12, atol=1e-9)
    every = np.arange(profiles.sizes["time"])
    draws = _replay_changes(scenario, population, profiles, choice, events, acceptance, every)
    error = draws.std(axis=0, ddof=1) / np.sqrt(DRAWS)
    assert (np.abs(draws.mean(axis=0) - mean_change) <= STANDARD_ERRORS * error + 1e-9).all()
    # The acceptance draws' spread is a lower bound of the replay's (performance adds to it).
    assert (np.sqrt(variance) <= draws.std(axis=0, ddof=1) * 1.25 + 1e-9).all()
