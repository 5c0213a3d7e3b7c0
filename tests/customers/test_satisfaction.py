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


# --- hand-worked examples for every function (they kill the surviving mutants of make mutate) --

def test_factor_measures_at_their_edges():
    """Tolerance 0 counts as 1 (2 events: ¼·1/1 + 1/1 = 1.25). Voltage: a deviation exactly
    at the band (1.25 against ±0.25) is inside, exactly at twice the band (1.5) counts once,
    NaN counts as inside; one customer's 1-D series works too. Fairness per segment and per
    offer column with three segments (medians 0.2 | 1.0 | 4.0 and 0.0 | 2.0 | 1.0)."""
    np.testing.assert_allclose(event_excess(np.array([2]), np.array([0])), [1.25])
    vm = np.array([1.0, 1.25, 1.5, np.nan, 0.7])
    assert voltage_outside_share(vm, 0.25) == pytest.approx((2 + 2 * 0) / 5)   # 1.5 and 0.7
    assert voltage_outside_share(np.array([0.4, 1.0]), 0.25) == pytest.approx(0.5 + 2 * 0.5)
    seg = np.array(["residential", "residential", "residential", "commercial", "industrial",
                    "industrial"])
    burden = np.array([[0.1, 0.0], [0.2, 0.0], [0.6, 0.3], [1.0, 2.0], [3.0, 0.0], [5.0, 2.0]])
    np.testing.assert_allclose(fairness(burden, seg), [[0.1, 0.0], [0.0, 0.0], [0.4, 0.3],
                                                       [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])


def test_entropy_weights_edges_by_hand():
    """One alternative: equal weights. Two alternatives ``(1, 1), (1, 3)``: the constant column
    gets 0, the other everything. An all-zero column counts as uniform (weight 0); a column
    summing below 1 (0.1, 0.3 → p = ¼, ¾) or holding a zero (p = 0, ¼, ¾ with 0·ln 0 = 0) is
    weighed by its entropy: e = (¼ ln 4 + ¾ ln 4/3)/ln 2 = 0.811278 for two alternatives."""
    np.testing.assert_allclose(entropy_weights(np.array([[0.2, 0.5, 0.9]])), np.full(3, 1 / 3))
    np.testing.assert_allclose(entropy_weights(np.array([[1.0, 1.0], [1.0, 3.0]])), [0.0, 1.0],
                               atol=1e-12)
    np.testing.assert_allclose(entropy_weights(np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]])),
                               [0.0, 1.0], atol=1e-12)
    e2 = (0.25 * math.log(4) + 0.75 * math.log(4 / 3)) / math.log(2)
    e3 = (0.25 * math.log(4) + 0.75 * math.log(4 / 3)) / math.log(3)
    got = entropy_weights(np.array([[0.1, 1.0], [0.3, 3.0]]))
    np.testing.assert_allclose(got, [0.5, 0.5], rtol=1e-12)            # same p in both columns
    got = entropy_weights(np.array([[0.0, 1.0], [1.0, 1.0], [3.0, 1.0]]))
    np.testing.assert_allclose(got, [1.0, 0.0], atol=1e-12)
    d1 = 1 - e3
    X = np.array([[0.0, 1.0], [1.0, 2.0], [3.0, 1.0]])     # col 2: p = ¼, ½, ¼
    e_b = (0.5 * math.log(4) + 0.5 * math.log(2)) / math.log(3)
    np.testing.assert_allclose(entropy_weights(X), [d1 / (d1 + 1 - e_b), (1 - e_b) / (d1 + 1 - e_b)],
                               rtol=1e-12)
    assert e2 == pytest.approx(0.811278, abs=1e-6)


def test_critic_weights_with_correlated_columns_by_hand():
    """Columns a = (0.1, 0.2, 0.3), b = 2a (r = 1), c = (0.3, 0.1, 0.2) (r = −½ with both), and
    a constant: ``C = σ·Σ_k (1 − r)`` gives a: σ·(0 + 0 + 1.5 + 1), b: 2σ·(0 + 0 + 1.5 + 1),
    c: σ·(1.5 + 1.5 + 0 + 1), constant 0, with σ = σ_a = σ_c = √(0.02/3) → (2.5, 5, 4, 0)/11.5."""
    a = np.array([0.1, 0.2, 0.3])
    X = np.column_stack([a, 2 * a, [0.3, 0.1, 0.2], np.full(3, 0.5)])   # σ = 0 exactly
    np.testing.assert_allclose(critic_weights(X), np.array([2.5, 5.0, 4.0, 0.0]) / 11.5,
                               rtol=1e-12, atol=1e-15)
    from customers.satisfaction import factor_weights

    np.testing.assert_array_equal(factor_weights(X, "critic"), critic_weights(X))
    np.testing.assert_array_equal(factor_weights(X, "entropy"), entropy_weights(X))


def test_satisfaction_index_clips_to_the_unit_interval():
    """Scores outside [0, 1] (never produced by `score_factors`, but the index guards): 1.4 → 1,
    −0.3 → 0."""
    w = np.array([1.0, 1.0])
    np.testing.assert_allclose(satisfaction_index(np.array([[1.4, 1.4], [-0.3, -0.3]]), w),
                               [1.0, 0.0])


def test_customer_voltage_picks_each_customers_bus_and_names_a_missing_one():
    """Buses 3, 5, 9; customers on 9, 3, 9 get columns 2, 0, 2. Customers on buses 4 and 6
    (neither in the table) → the first one, 4, is named."""
    import xarray as xr

    from customers.satisfaction import customer_voltage

    vm = xr.DataArray(np.array([[1.0, 1.1, 1.2], [0.9, 0.8, 0.7]]), dims=("time", "bus"),
                      coords={"bus": [3, 5, 9]})
    population = xr.Dataset({"bus": ("customer", [9, 3, 9])})
    np.testing.assert_array_equal(customer_voltage(population, vm.transpose("bus", "time")),
                                  [[1.2, 0.7], [1.0, 0.9], [1.2, 0.7]])
    with pytest.raises(ValueError, match="^vm_pu has no bus 4$"):
        customer_voltage(xr.Dataset({"bus": ("customer", [3, 4, 6])}), vm)


def _menu_case(**overrides):
    """Three customers (residential ×2, commercial), flat 0.30 EUR/kWh (current) and a TOU of
    0.24 before noon and 0.48 after (day mean 0.36), one contract of 2 kW × 4 events."""
    import xarray as xr

    from tests.customers.feeder_case import make_scenario

    scenario = make_scenario(offers={
        "current_tariff": "flat",
        "tariffs": [
            {"name": "flat", "kind": "flat", "price_eur_per_kwh": 0.30},
            {"name": "tou", "kind": "tou", "periods": [
                {"name": "am", "start_h": 0, "end_h": 12, "price_eur_per_kwh": 0.24},
                {"name": "pm", "start_h": 12, "end_h": 24, "price_eur_per_kwh": 0.48}]},
        ],
        "curtailment": [{"name": "cut", "kw": 2.0, "max_events": 4}],
    }, **overrides)
    population = xr.Dataset(
        {"comfort_events": ("customer", [2, 8, 4]),
         "segment": ("customer", np.array(["residential", "residential", "commercial"])),
         "annual_kwh": ("customer", [8760.0, 17520.0, 4380.0])},
        coords={"customer": [0, 1, 2]})
    return scenario, population


def test_candidate_factor_matrix_without_profiles_by_hand():
    """Rows: (flat, none), (flat, cut), (tou, none), (tou, cut), three customers each.

    Bill: 0.36/0.30 − 1 = 0.2 on the TOU, 0 on the flat. Mean load 1, 2, 0.5 kW: discomfort
    ½·min(2/(2·P), 1) = 0.5, 0.25, 0.5. Events 4 against tolerance 2, 8, 4: 1.25, 0.125, 0.25.
    Voltage as given. Fairness: burden (bill + discomfort) against the segment median:
    residential (0.5, 0.25) → median 0.375 → 0.125 each; the lone commercial customer 0.
    """
    from customers.satisfaction import candidate_factor_matrix

    scenario, population = _menu_case()
    got = candidate_factor_matrix(population, scenario, np.array([0.1, 0.0, 0.2]))
    v = [0.1, 0.0, 0.2]
    none = [[0, 0, 0, v[i], 0] for i in range(3)]
    cut = [[0, 0.5, 1.25, v[0], 0.125], [0, 0.25, 0.125, v[1], 0.125], [0, 0.5, 0.25, v[2], 0]]
    want = np.array(none + cut + [[0.2, *r[1:]] for r in none] + [[0.2, *r[1:]] for r in cut])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(candidate_factor_matrix(population, scenario)[:, 3], 0.0)


def test_candidate_factor_matrix_prices_the_customers_own_load_by_hand():
    """With profiles at 06:00 and 18:00: imports (1, 0), (0, 3), (1, 0) (an export counts 0).
    Flat cost 0.30, 0.90, 0.30; TOU 0.24, 1.44, 0.24 → bill −0.2, +0.6, −0.2. Mean import 0.5,
    1.5, 0.5 kW: discomfort ½·min(2/(2·P), 1) = 0.5, ⅓, 0.5."""
    import xarray as xr

    from customers.satisfaction import candidate_factor_matrix

    scenario, population = _menu_case()
    time = np.array(["2024-01-15T06:00", "2024-01-15T18:00"], dtype="datetime64[ns]")
    profiles = xr.Dataset({"p_kw": (("time", "customer"), [[1.0, 0.0, 1.0], [0.0, 3.0, -1.0]])},
                          coords={"time": time, "customer": [0, 1, 2]})
    got = candidate_factor_matrix(population, scenario, profiles=profiles)
    np.testing.assert_allclose(got[:6, 0], 0.0, atol=1e-15)
    np.testing.assert_allclose(got[6:, 0], [-0.2, 0.6, -0.2] * 2, rtol=1e-12)
    np.testing.assert_allclose(got[3:6, 1], [0.5, 1 / 3, 0.5], rtol=1e-12)
    # TOU + cut burdens −0.2 + 0.5 = 0.3 and 0.6 + ⅓ (residential median 0.6167 → 0.3167 each),
    # the lone commercial customer 0.
    np.testing.assert_allclose(got[9:, 4], [0.95 / 3, 0.95 / 3, 0.0], rtol=1e-12)


def test_baseline_satisfaction_with_given_weights_by_hand():
    """Weights (0, 0, 0, 1, 1): before any offer every factor but voltage scores its status
    quo, so the index is (s_voltage + 1)/2. Voltage 0.93 a quarter of the time (band 0.05):
    raw 0.25 → score clip(1 − 0.25/0.05) = 0 → index ½; no deviation → 1. The bill factor
    scores ½, the others 1; units and the weighting method are recorded."""
    from customers.satisfaction import baseline_satisfaction

    scenario, population = _menu_case()
    vm = np.ones((3, 4))
    vm[0, 0] = 0.93
    vm[2, :2] = 1.02                                         # inside the band
    out = baseline_satisfaction(population, scenario, weights=[0, 0, 0, 1, 1], vm_pu=vm)
    np.testing.assert_allclose(out["voltage_outside_share"].values, [0.25, 0.0, 0.0])
    np.testing.assert_allclose(out["satisfaction_before"].values, [0.5, 1.0, 1.0])
    np.testing.assert_allclose(out["satisfaction_factor"].values[1], [0.5, 1, 1, 1, 1])
    assert out["factor"].values.tolist() == list(FACTORS)
    assert {name: out[name].attrs["units"] for name in (
        "satisfaction_weight", "satisfaction_factor", "voltage_outside_share",
        "satisfaction_before")} == dict.fromkeys(
        ("satisfaction_weight", "satisfaction_factor", "voltage_outside_share",
         "satisfaction_before"), "1")
    assert out["satisfaction_weight"].attrs["method"] == scenario.satisfaction.weighting
    assert out["satisfaction_weight"].dtype == np.float64 and out["factor"].dtype == "<U16"
    assert {name: out[name].attrs["long_name"] for name in out.data_vars
            if name not in population} == {
        "satisfaction_weight": "satisfaction factor weight",
        "satisfaction_factor": "baseline factor score",
        "voltage_outside_share": "time share outside voltage band",
        "satisfaction_before": "satisfaction before offers"}
    assert {name: out[name].dims for name in ("satisfaction_weight", "satisfaction_factor",
                                              "voltage_outside_share", "satisfaction_before")} \
        == {"satisfaction_weight": ("factor",), "satisfaction_factor": ("customer", "factor"),
            "voltage_outside_share": ("customer",), "satisfaction_before": ("customer",)}
    without = baseline_satisfaction(population, scenario, weights=np.ones(5))
    np.testing.assert_allclose(without["satisfaction_before"].values, 0.9)   # (½ + 4)/5


def test_default_weights_come_from_the_candidate_matrix_priced_on_the_profiles():
    """Without given weights: the scenario's method (CRITIC here) over the scored candidate
    matrix, with the bill column priced on the customers' own profiles (bills −0.2, 0.6, −0.2
    instead of 0.2) and the voltage column from the power flow."""
    import xarray as xr

    from customers.satisfaction import (
        baseline_satisfaction,
        candidate_factor_matrix,
        factor_weights,
    )

    scenario, population = _menu_case(satisfaction={"weighting": "critic"})
    time = np.array(["2024-01-15T06:00", "2024-01-15T18:00"], dtype="datetime64[ns]")
    profiles = xr.Dataset({"p_kw": (("time", "customer"), [[1.0, 0.0, 1.0], [0.0, 1.0, -1.0]])},
                          coords={"time": time, "customer": [0, 1, 2]})
    vm = np.array([[1.0, 0.9], [1.0, 1.0], [0.9, 0.9]])       # outside ±0.05: ½, 0, 1 of the time
    out = baseline_satisfaction(population, scenario, profiles=profiles, vm_pu=vm)
    want = factor_weights(score_factors(candidate_factor_matrix(
        population, scenario, np.array([0.5, 0.0, 1.0]), profiles)), "critic")
    np.testing.assert_allclose(out["satisfaction_weight"].values, want, rtol=1e-12)
    assert np.abs(want - factor_weights(score_factors(candidate_factor_matrix(
        population, scenario, np.array([0.5, 0.0, 1.0]), profiles)), "entropy")).max() > 0.01
    plain = baseline_satisfaction(population, scenario, vm_pu=vm)["satisfaction_weight"].values
    assert np.abs(plain - want).max() > 0.01
    flat = baseline_satisfaction(population, scenario, profiles=profiles)["satisfaction_weight"]
    assert np.abs(flat.values - want).max() > 0.01


def test_mean_price_of_a_free_flat_tariff_is_zero():
    """A flat tariff at 0 EUR/kWh has mean price 0 (not a default); a TOU's is the time-weighted
    mean of its periods: (12·0.24 + 12·0.48)/24 = 0.36."""
    from customers.satisfaction import _mean_price

    scenario, _ = _menu_case()
    free = scenario.offers.tariffs[0].model_copy(update={"price_eur_per_kwh": 0.0})
    assert _mean_price(free) == 0.0
    assert _mean_price(scenario.offers.tariffs[1]) == pytest.approx(0.36, rel=1e-15)
