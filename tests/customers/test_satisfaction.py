"""Objective weights (entropy, CRITIC) on hand-computed examples; the index and its factors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from customers.satisfaction import (
    FACTORS,
    critic_weights,
    entropy_weights,
    event_excess,
    fairness,
    satisfaction_index,
    score_factors,
    voltage_outside_share,
)

#: Hand-computed weights are quoted to 1e-12 relative precision.
HAND_RTOL = 1e-12
EXAMPLE = np.array([[1.0, 4.0], [2.0, 2.0], [3.0, 4.0]])


def test_entropy_weights_hand_example():
    # Column 1: p = 1/6, 2/6, 3/6; column 2: p = 0.4, 0.2, 0.4; e_j = −Σ p ln p / ln 3.
    e1 = (math.log(6) / 6 + math.log(3) / 3 + math.log(2) / 2) / math.log(3)
    e2 = (0.8 * math.log(2.5) + 0.2 * math.log(5)) / math.log(3)
    d1, d2 = 1 - e1, 1 - e2
    np.testing.assert_allclose(entropy_weights(EXAMPLE), [d1 / (d1 + d2), d2 / (d1 + d2)],
                               rtol=HAND_RTOL)
    # ≈ (0.6662, 0.3338): the column with the larger relative spread weighs more.
    assert entropy_weights(EXAMPLE)[0] == pytest.approx(0.6662, abs=1e-4)


def test_critic_weights_hand_example():
    # The columns are uncorrelated (r = 0), so C_j = σ_j·(0 + 1) and w ∝ σ.
    s1, s2 = np.std([1.0, 2.0, 3.0]), np.std([4.0, 2.0, 4.0])
    np.testing.assert_allclose(critic_weights(EXAMPLE), [s1 / (s1 + s2), s2 / (s1 + s2)],
                               rtol=HAND_RTOL)


def test_constant_columns_get_no_weight_and_all_constant_is_equal():
    X = np.column_stack([EXAMPLE[:, 0], np.full(3, 0.7)])
    np.testing.assert_allclose(entropy_weights(X), [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(critic_weights(X), [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(entropy_weights(np.ones((4, 3))), np.full(3, 1 / 3))
    np.testing.assert_allclose(critic_weights(np.ones((4, 3))), np.full(3, 1 / 3))


def test_scores_and_index_stay_in_unit_interval():
    rng = np.random.default_rng(0)
    raw = rng.normal(0.0, 1.0, (50, len(FACTORS)))
    scores = score_factors(raw)
    assert scores.min() >= 0 and scores.max() <= 1
    w = entropy_weights(scores)
    s = satisfaction_index(scores, w)
    assert s.min() >= 0 and s.max() <= 1
    # Status quo: no bill change scores ½, no problems elsewhere score 1.
    quo = score_factors(np.zeros(len(FACTORS)))
    assert quo[FACTORS.index("bill_change")] == 0.5
    assert (np.delete(quo, FACTORS.index("bill_change")) == 1).all()


def test_factor_measures():
    vm = np.array([[1.0, 1.06, 1.11, 0.98], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(voltage_outside_share(vm, 0.05), [0.5 + 2 * 0.25, 0.0])
    np.testing.assert_allclose(event_excess(np.array([0, 4, 8, 12]), np.array([8, 8, 8, 8])),
                               [0.0, 0.125, 0.25, 0.75])
    seg = np.array(["residential"] * 3 + ["commercial"])
    np.testing.assert_allclose(fairness(np.array([0.0, 0.1, 0.3, 5.0]), seg), [0.1, 0, 0.2, 0])


def test_baseline_satisfaction_sees_the_voltage_at_the_customers_bus():
    import xarray as xr

    from customers.satisfaction import baseline_satisfaction, customer_voltage
    from tests.customers.feeder_case import feeder_case

    scenario, population, profiles, _ = feeder_case()
    buses = np.unique(population["bus"].values)
    vm = np.ones((profiles.sizes["time"], len(buses)))
    low_bus = int(population["bus"].values[0])
    vm[: len(vm) // 4, buses == low_bus] = 0.93     # a quarter of the time below 0.95 p.u.
    vm_pu = xr.DataArray(vm, dims=("time", "bus"), coords={"bus": buses})
    at_customer = customer_voltage(population, vm_pu)
    assert at_customer.shape == (population.sizes["customer"], profiles.sizes["time"])
    scored = baseline_satisfaction(population, scenario, vm_pu=at_customer, profiles=profiles)
    low = population["bus"].values == low_bus
    np.testing.assert_allclose(scored["voltage_outside_share"].values[low], 0.25)
    assert (scored["voltage_outside_share"].values[~low] == 0).all()
    assert scored["satisfaction_weight"].sum() == pytest.approx(1.0)
    assert scored["satisfaction_weight"].sel(factor="voltage_quality") > 0
    assert (scored["satisfaction_before"].values[low]
            < scored["satisfaction_before"].values[~low].min()).all()


def test_bill_factor_direction_by_hand():
    """The bill factor falls as the bill rises (scale 20 %, status quo ½).

    score = clip(½ − ½·raw/0.20, 0, 1): a 10 % saving (raw −0.10) → ½ + ¼ = 0.75; a 10 % rise
    → ½ − ¼ = 0.25; a 20 % saving → 1; a 20 % rise → 0; a 30 % rise clips at 0. The other
    factors score 1 − raw/scale: discomfort 0.25 of 0.50 → 0.5; voltage 0.01 of 0.05 → 0.8.
    """
    raw = np.zeros((5, len(FACTORS)))
    raw[:, FACTORS.index("bill_change")] = [-0.10, 0.10, -0.20, 0.20, 0.30]
    scores = score_factors(raw)
    np.testing.assert_allclose(scores[:, FACTORS.index("bill_change")],
                               [0.75, 0.25, 1.0, 0.0, 0.0], atol=1e-15)
    other = np.zeros(len(FACTORS))
    other[FACTORS.index("discomfort")] = 0.25
    other[FACTORS.index("voltage_quality")] = 0.01
    other[FACTORS.index("event_excess")] = 2.0
    scored = score_factors(other)
    assert scored[FACTORS.index("discomfort")] == pytest.approx(0.5, abs=1e-15)
    assert scored[FACTORS.index("voltage_quality")] == pytest.approx(0.8, abs=1e-15)
    assert scored[FACTORS.index("event_excess")] == 0.0          # clipped, not negative


def test_satisfaction_index_is_the_normalised_weighted_sum():
    """Weights (2, 1, 1, 0, 0) normalise to (½, ¼, ¼, 0, 0); scores (0.8, 0.4, 0.0, 1, 1) →
    0.4 + 0.1 + 0 = 0.5."""
    scores = np.array([0.8, 0.4, 0.0, 1.0, 1.0])
    assert satisfaction_index(scores, np.array([2.0, 1.0, 1.0, 0.0, 0.0])) == pytest.approx(0.5)
