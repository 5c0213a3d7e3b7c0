"""Behavioural response: TOU conservation and peak lowering, curtailment bounds and rebound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from customers.response import (
    acceptance_probability,
    curtail,
    event_blocks,
    price_segments,
    step_days,
    step_hours,
    step_prices,
    tou_response,
)
from scenarios.schema import ResponseConfig, Tariff

#: Energy bookkeeping tolerance [kWh relative].
ENERGY_RTOL = 1e-9
TOU = Tariff(name="tou", kind="tou", periods=[
    {"name": "off", "start_h": 0, "end_h": 7, "price_eur_per_kwh": 0.20},
    {"name": "day", "start_h": 7, "end_h": 17, "price_eur_per_kwh": 0.30},
    {"name": "peak", "start_h": 17, "end_h": 21, "price_eur_per_kwh": 0.55},
    {"name": "eve", "start_h": 21, "end_h": 24, "price_eur_per_kwh": 0.30},
])
FLAT = Tariff(name="flat", kind="flat", price_eur_per_kwh=0.30)
TIME = (np.datetime64("2024-01-01T00:00") + np.arange(72) * np.timedelta64(60, "m")).astype(
    "datetime64[ns]")


def _respond(load, config, scale=None):
    hours, days = step_hours(TIME), step_days(TIME)
    segment, r, share = price_segments(step_prices(hours, FLAT), step_prices(hours, TOU), hours)
    scale = np.ones(len(load)) if scale is None else scale
    return tou_response(load, days, segment, r, share, config, scale), hours, days


@settings(max_examples=25, deadline=None)
@given(
    load=arrays(np.float64, (3, 72), elements=st.floats(0.0, 20.0, allow_subnormal=False)),
    own=st.floats(-0.5, -0.01),
    cross=st.floats(0.0, 0.2),
    conservation=st.floats(0.0, 0.2),
)
def test_tou_conserves_daily_energy_within_the_effect_and_lowers_peak(load, own, cross,
                                                                       conservation):
    config = ResponseConfig(own_elasticity=own, cross_elasticity=cross,
                            conservation_effect=conservation)
    after, hours, days = _respond(load, config)
    assert (after >= 0).all()
    peak = (hours >= 17) & (hours < 21)
    for d in range(3):
        today = days == d
        before_e, after_e = load[:, today].sum(axis=1), after[:, today].sum(axis=1)
        lost = before_e - after_e
        assert (lost >= -ENERGY_RTOL * (1 + before_e)).all()
        assert (lost <= conservation * before_e + ENERGY_RTOL * (1 + before_e)).all()
        peak_before = load[:, today & peak].sum(axis=1)
        peak_after = after[:, today & peak].sum(axis=1)
        assert (peak_after <= peak_before + ENERGY_RTOL * (1 + peak_before)).all()
        assert ((peak_after < peak_before) | (peak_before < 1e-6)).all()


def test_tou_exact_bookkeeping_on_a_flat_load():
    config = ResponseConfig(own_elasticity=-0.1, cross_elasticity=0.04, conservation_effect=0.1)
    load = np.ones((1, 72))
    after, hours, _ = _respond(load, config)
    peak = (hours >= 17) & (hours < 21)
    # Peak: r = ln(0.55/0.30); own + cross·(hour-weighted mean r of the other hours).
    r = {"off": np.log(0.2 / 0.3), "peak": np.log(0.55 / 0.3)}
    others = (7 * r["off"]) / 20.0
    expected_peak = 1.0 + (-0.1 * r["peak"] + 0.04 * others)
    np.testing.assert_allclose(after[0, peak], expected_peak, rtol=1e-12)
    # Conservation: the day loses 10 % of what left the periods whose raw response fell.
    assert after[0, :24].sum() < 24.0


def test_uniform_price_change_only_conserves():
    config = ResponseConfig(own_elasticity=-0.1, cross_elasticity=0.04, conservation_effect=0.05)
    hours, days = step_hours(TIME), step_days(TIME)
    dear = Tariff(name="dear", kind="flat", price_eur_per_kwh=0.36)
    segment, r, share = price_segments(step_prices(hours, FLAT), step_prices(hours, dear), hours)
    load = np.linspace(1, 3, 72)[None, :]
    after = tou_response(load, days, segment, r, share, config, np.ones(1))
    # One price segment: no other period to substitute into, so only the own term acts.
    drop = 0.1 * np.log(1.2)
    np.testing.assert_allclose(after, load * (1 - 0.05 * drop), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    net=arrays(np.float64, (4, 30), elements=st.floats(-5.0, 10.0)),
    flex_share=arrays(np.float64, (4, 30), elements=st.floats(0.0, 1.0)),
    kw=arrays(np.float64, 4, elements=st.floats(0.0, 8.0)),
    perf=st.floats(0.0, 1.0),
    rebound=st.floats(0.0, 1.5),
)
def test_curtailment_never_negative_and_bounded(net, flex_share, kw, perf, rebound):
    event = np.zeros(30, bool)
    event[5:9] = True
    event[15:17] = True
    flex = np.maximum(net, 0.0) * flex_share
    after, delivered = curtail(net, flex, kw, event, np.full((4, 2), perf), rebound, 4)
    assert (delivered >= 0).all()
    assert (delivered <= flex + 1e-12).all()
    assert (delivered <= kw[:, None] + 1e-12).all()
    # Curtailment never pushes a customer's load below zero (nor below its PV export).
    assert (after[:, event] >= np.minimum(net[:, event], 0.0) - 1e-12).all()
    # Paid-back energy is rebound × curtailed energy (all paybacks fit in the window here).
    np.testing.assert_allclose((after - net).sum(axis=1), (rebound - 1.0) * delivered.sum(axis=1),
                               atol=1e-9)


def test_event_blocks_and_acceptance_logit():
    assert event_blocks(np.array([0, 1, 1, 0, 0, 1, 0, 1], bool)) == [(1, 3), (5, 6), (7, 8)]
    config = ResponseConfig()
    value = np.array([0.0, 50.0, 100.0])
    p = acceptance_probability(value, 0.2, 0.8, np.array(["A", "A", "A"]), config)
    assert (np.diff(p) > 0).all()
    expected = 1 / (1 + np.exp(-(config.acceptance_intercept + 0.02 * 50 - 2.0 * 0.2
                                 + 2.0 * 0.3)))
    assert p[1] == pytest.approx(expected, rel=1e-12)
    worse = acceptance_probability(50.0, 0.2, 0.8, np.array(["D"]), config, deposit_eur=150.0)
    assert worse[0] < p[1]


def test_expected_performance_and_survival():
    from customers.response import draw_performance, event_survival, expected_performance

    config = ResponseConfig(performance_mean=0.9, performance_sd=0.2)
    rng = np.random.default_rng(1)
    sample = draw_performance(rng.random(400_000), rng.random(400_000), config)
    # Monte-Carlo error of the mean ≈ 0.2/√4e5 ≈ 3e-4: allow 4 standard errors.
    assert expected_performance(config) == pytest.approx(sample.mean(), abs=1.3e-3)
    assert expected_performance(config) < 0.9          # clipping at 1 costs more than at 0
    np.testing.assert_allclose(event_survival(4, 0.1), [1.0, 0.9, 0.9 * 0.8, 0.9 * 0.8 * 0.7])


#: Vectorized TOU response against the loop twin: same arithmetic, different summation order.
TWIN_RTOL = 1e-12


@settings(max_examples=15, deadline=None)
@given(load=arrays(np.float64, (2, 72), elements=st.floats(0.0, 10.0, allow_subnormal=False)),
       scale=arrays(np.float64, 2, elements=st.floats(0.0, 3.0)))
def test_tou_response_matches_the_loop_twin(load, scale):
    from tests.reference.response import tou_response_loops

    config = ResponseConfig(own_elasticity=-0.2, cross_elasticity=0.05, conservation_effect=0.03)
    hours, days = step_hours(TIME), step_days(TIME)
    segment, r, share = price_segments(step_prices(hours, FLAT), step_prices(hours, TOU), hours)
    fast = tou_response(load, days, segment, r, share, config, scale)
    slow = tou_response_loops(load, days, segment, r, share, -0.2, 0.05, 0.03, scale)
    np.testing.assert_allclose(fast, slow, rtol=TWIN_RTOL, atol=1e-12)


def test_trim_events_keeps_the_central_steps():
    from customers.response import trim_events

    event = np.array([0, 1, 1, 1, 1, 1, 0, 1, 1, 0], bool)
    assert np.flatnonzero(trim_events(event, 3)).tolist() == [2, 3, 4, 7, 8]
    assert np.flatnonzero(trim_events(event, 10)).tolist() == np.flatnonzero(event).tolist()
