"""Model structure: exact row pruning, count mode, the top-down builders."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from optimizer.handoff import to_highs
from optimizer.model import ModelOptions, build_model
from optimizer.pairs import build_pairs, select_peak_steps
from optimizer.synthetic import synthetic_problem


def _optimum(model) -> float:
    hm = to_highs(model)
    hm.highs.setOptionValue("mip_rel_gap", 0.0)
    hm.highs.run()
    return hm.sign * hm.highs.getInfo().objective_function_value


def test_pruned_peak_rows_give_the_same_optimum():
    problem = synthetic_problem(60, offers=6, steps=48, seed=8, trafos=2)
    t = problem.shape[2]
    pruned = build_model(problem)
    full = build_model(problem, ModelOptions(peak_steps=np.arange(t)))
    assert len(pruned.S) < t
    assert _optimum(pruned) == pytest.approx(_optimum(full), rel=1e-9)


def test_safe_pruning_keeps_every_step_that_can_set_the_peak():
    rng = np.random.default_rng(0)
    load_min = rng.uniform(0, 10, 50)
    load_max = load_min + rng.uniform(0, 3, 50)
    kept = select_peak_steps(load_min, load_max)
    dropped = np.setdiff1d(np.arange(50), kept)
    assert (load_max[dropped] <= load_min.max()).all()
    assert int(np.argmax(load_min)) in kept


def test_forbidden_pairs_have_no_column(tiny_problem):
    problem = tiny_problem(1, satisfaction_floor_customer=0.5)
    pairs = build_pairs(problem)
    allowed = problem.eligible & (problem.satisfaction >= 0.5)
    assert pairs.customer.size == allowed.sum()
    assert allowed[pairs.customer, pairs.offer].all()


def test_count_mode_equals_duplicated_customers(tiny_problem):
    problem = tiny_problem(3, n=3, k=3, t=5)
    twice = replace(
        problem,
        customer_ids=np.arange(6),
        **{f: np.concatenate([getattr(problem, f)] * 2) for f in (
            "delta_kw", "acceptance", "incentive_eur", "bill_change_eur", "revenue_change_eur",
            "bad_debt_eur", "satisfaction", "eligible")},
    )
    counted = build_model(problem, ModelOptions(counts=np.full(3, 2.0)))
    assert _optimum(counted) == pytest.approx(_optimum(build_model(twice)), rel=1e-9)


# --- every row read back: coefficients and bounds on a hand-made instance -------------------

def _hand_problem(**overrides):
    """Two customers, offers (status quo, a, b), two steps; customer 1 may not take offer a.

    Pairs (columns, by customer then offer): p0 = (0, sq), p1 = (0, a), p2 = (0, b),
    p3 = (1, sq), p4 = (1, b).
    """
    import scipy.sparse as sp

    from optimizer.problem import OfferProblem

    delta = np.zeros((2, 3, 2))
    delta[0, 1] = [-1.0, -0.5]
    delta[0, 2] = [-2.0, 0.5]
    delta[1, 1] = [-9.0, -9.0]          # ineligible: must appear nowhere
    delta[1, 2] = [-0.5, -1.0]
    fields = dict(
        customer_ids=np.array([7, 8]), offer_names=("sq", "a", "b"),
        base_kw=np.array([10.0, 8.0]), delta_kw=delta, acceptance=np.full((2, 3), 0.5),
        incentive_eur=np.array([[0.0, 10.0, 30.0], [0.0, 99.0, 20.0]]),
        bill_change_eur=np.zeros((2, 3)),
        revenue_change_eur=np.array([[0.0, -5.0, 8.0], [0.0, 0.0, -6.0]]),
        bad_debt_eur=np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]]),
        satisfaction=np.array([[0.9, 0.6, 0.5], [0.8, 0.1, 0.4]]),
        eligible=np.array([[True, True, True], [True, False, True]]),
        step_h=0.25, peak_value_eur_per_kw=40.0, incentive_weight=1.0, bad_debt_weight=1.5,
        satisfaction_value_eur=20.0, budget_eur=40.0, satisfaction_floor_mean=0.6,
        revenue_band_eur=7.0,
        trafo_customer=sp.csr_array(np.eye(2)), trafo_base_kw=np.array([[5.0, 5.0], [4.0, 4.0]]),
        trafo_limit_kw=np.array([4.5, 5.5]),
        line_customer=sp.csr_array(np.ones((1, 2))), line_base_kw=np.array([[9.0], [7.0]]),
        line_limit_kw=np.array([8.5]),
    )
    fields.update(overrides)
    return OfferProblem(**fields)


def _label(m, var) -> str:
    if var is m.peak:
        return "peak"
    if var.parent_component() is m.x:
        return f"p{var.index()}"
    return var.parent_component().name


def _linear(m, expr) -> tuple[dict[str, float], float]:
    """A linear expression as ({variable: coefficient}, constant), zero coefficients left out."""
    from pyomo.repn import generate_standard_repn

    repn = generate_standard_repn(expr, compute_values=True)
    coefs = {_label(m, v): float(c)
             for v, c in zip(repn.linear_vars, repn.linear_coefs, strict=True) if c != 0}
    return coefs, float(repn.constant or 0.0)


def _read(m, row) -> tuple[dict[str, float], float | None, float | None]:
    """A row as ({variable: coefficient}, lower, upper), its constant moved into the bounds."""
    import pyomo.environ as pyo

    coefs, const = _linear(m, row.body)
    lower = None if row.lower is None else float(pyo.value(row.lower)) - const
    upper = None if row.upper is None else float(pyo.value(row.upper)) - const
    return coefs, lower, upper


def test_columns_bounds_and_one_offer_rows_by_hand():
    """Columns only for eligible pairs; binary x; peak ≥ L = max_t(base + Σ_i min_k Δ) =
    max(10 − 2 − 0.5, 8 − 0.5 − 1) = 7.5 kW, capped at 10 kW when asked; one offer each."""
    import pyomo.environ as pyo

    m = build_model(_hand_problem(), ModelOptions(peak_cap_kw=10.0))
    assert list(zip(m.pair_data.customer, m.pair_data.offer, strict=True)) == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 2)]
    assert all(v.domain is pyo.Binary for v in m.x.values())
    assert m.peak.lb == pytest.approx(7.5) and m.peak.ub == 10.0
    rows = [_read(m, r) for r in m.one_offer.values()]
    assert rows == [({"p0": 1.0, "p1": 1.0, "p2": 1.0}, 1.0, 1.0), ({"p3": 1.0, "p4": 1.0}, 1.0, 1.0)]
    relaxed = build_model(_hand_problem(), ModelOptions(relax=True))
    assert all(v.domain is pyo.UnitInterval for v in relaxed.x.values())


def test_peak_epigraph_rows_by_hand():
    """``Σ_p Δ[p,t]·x[p] − peak ≤ −base[t]``: step 0 (base 10) and step 1 (base 8) both can set
    the peak (load_max 10 and 8 + 0.5 = 8.5 above L = 7.5)."""
    m = build_model(_hand_problem())
    assert list(m.S) == [0, 1]
    rows = [_read(m, r) for r in m.peak_epigraph.values()]
    assert rows[0] == ({"p1": -1.0, "p2": -2.0, "p4": -0.5, "peak": -1.0}, None, -10.0)
    assert rows[1] == ({"p1": -0.5, "p2": 0.5, "p4": -1.0, "peak": -1.0}, None, -8.0)


def test_single_rows_by_hand():
    """Budget: dearest 30 + 20 = 50 > 40, so ``10·p1 + 30·p2 + 20·p4 ≤ 40``. Satisfaction: the
    least satisfying choices 0.5 + 0.4 = 0.9 < 2·0.6, so ``Σ sat·x ≥ 1.2``. Revenue: reachable
    totals −11 … 8 leave the band ±7, so ``−5·p1 + 8·p2 − 6·p4`` ∈ [−7, 7]."""
    m = build_model(_hand_problem())
    assert _read(m, m.budget) == ({"p1": 10.0, "p2": 30.0, "p4": 20.0}, None, 40.0)
    coefs, lower, upper = _read(m, m.satisfaction_mean)
    assert coefs == pytest.approx({"p0": 0.9, "p1": 0.6, "p2": 0.5, "p3": 0.8, "p4": 0.4})
    assert (lower, upper) == (pytest.approx(1.2), None)
    assert _read(m, m.revenue_up) == ({"p1": -5.0, "p2": 8.0, "p4": -6.0}, None, 7.0)
    assert _read(m, m.revenue_down) == ({"p1": -5.0, "p2": 8.0, "p4": -6.0}, -7.0, None)
    assert m.component("cost_cap") is None
    # Rows that cannot bind are left out: budget 50, floor 0.45, band 11.
    loose = build_model(_hand_problem(budget_eur=50.0, satisfaction_floor_mean=0.45,
                                      revenue_band_eur=11.0))
    for name in ("budget", "satisfaction_mean", "revenue_up", "revenue_down"):
        assert loose.component(name) is None


def test_network_rows_by_hand():
    """Transformer 0 (customer 0): base 5 at step 0 can reach 5 > 4.5, so
    ``−1·p1 − 2·p2 ≤ 4.5 − 5``; at step 1 at most 4 + 0.5 = 4.5 (pruned); transformer 1 never
    exceeds 5.5. Line (both customers): step 0 reaches 9 > 8.5, so ``−8.5 − 9 ≤ −p1 − 2·p2 −
    0.5·p4 ≤ 8.5 − 9``; step 1 stays within 5.5 … 7.5 (pruned)."""
    m = build_model(_hand_problem())
    assert m._network_rows == [("trafo", 0, 0), ("line", 0, 0)]
    rows = [_read(m, r) for r in m.network.values()]
    assert rows[0] == ({"p1": -1.0, "p2": -2.0}, None, pytest.approx(-0.5))
    assert rows[1] == ({"p1": -1.0, "p2": -2.0, "p4": -0.5}, pytest.approx(-17.5),
                       pytest.approx(-0.5))


def test_objectives_by_hand():
    """Value: ``40·(10 − peak) − Σ (incentive + 1.5·bad debt)·x + 20·(1/2)·Σ sat·x``:
    p0 9, p1 −10 − 1.5 + 6 = −5.5, p2 −30 − 3 + 5 = −28, p3 8, p4 −20 − 4.5 + 4 = −20.5.
    Peak sweep on satisfaction: ``10 − peak + 1e-3·sat/2``; on cost: ``− 1e-6·cost``, with the
    cost row ``Σ cost·x ≤ 33 + 24.5 + 1`` (a free row whose bound the sweep moves)."""
    import pyomo.environ as pyo

    m = build_model(_hand_problem())
    assert m.objective.sense == pyo.maximize
    got, constant = _linear(m, m.objective.expr)
    assert got == pytest.approx({"p0": 9.0, "p1": -5.5, "p2": -28.0, "p3": 8.0, "p4": -20.5,
                                 "peak": -40.0})
    assert constant == pytest.approx(400.0)

    sweep = build_model(_hand_problem(), ModelOptions(objective="peak", epsilon_row="satisfaction"))
    got, constant = _linear(sweep, sweep.objective.expr)
    assert got == pytest.approx({"p0": 4.5e-4, "p1": 3e-4, "p2": 2.5e-4, "p3": 4e-4,
                                 "p4": 2e-4, "peak": -1.0}, rel=1e-12)
    assert constant == pytest.approx(10.0)

    cost = build_model(_hand_problem(), ModelOptions(objective="peak", epsilon_row="cost"))
    got, _ = _linear(cost, cost.objective.expr)
    assert got == pytest.approx({"p1": -11.5e-6, "p2": -33e-6, "p4": -24.5e-6, "peak": -1.0},
                                rel=1e-12)
    assert _read(cost, cost.cost_cap) == ({"p1": 11.5, "p2": 33.0, "p4": 24.5}, None,
                                          pytest.approx(58.5))


def test_elastic_rows_and_objective_by_hand():
    """Elastic mode: each limit gets a slack with the sign that relaxes it, and the objective
    minimises Σ s / scale with scale = the limit (budget 40, band 7, trafo 4.5, line 8.5) or
    0.01 for the satisfaction mean; the satisfaction slack counts n = 2 times."""
    import pyomo.environ as pyo

    m = build_model(_hand_problem(), ModelOptions(elastic=True))
    assert _read(m, m.budget)[0] == {"p1": 10.0, "p2": 30.0, "p4": 20.0, "slack_budget": -1.0}
    assert _read(m, m.satisfaction_mean)[0]["slack_satisfaction_mean"] == 2.0
    assert _read(m, m.revenue_up)[0]["slack_revenue_up"] == -1.0
    assert _read(m, m.revenue_down)[0]["slack_revenue_down"] == 1.0
    rows = [_read(m, r)[0] for r in m.network.values()]
    assert rows[0]["slack_trafo_0"] == -1.0 and rows[1]["slack_line_0"] == -1.0
    assert m.objective.sense == pyo.minimize
    got, _ = _linear(m, m.objective.expr)
    assert got == pytest.approx({"slack_budget": 1 / 40, "slack_satisfaction_mean": 100.0,
                                 "slack_revenue_up": 1 / 7, "slack_revenue_down": 1 / 7,
                                 "slack_trafo_0": 1 / 4.5, "slack_line_0": 1 / 8.5})


def test_count_mode_bounds_and_rows_by_hand():
    """Clusters of 2 and 3 customers: ``x ∈ {0..count}``, one-offer rows sum to the count, the
    budget's dearest total 2·30 + 3·20 = 120 > 40 and the satisfaction floor 5·0.6 = 3."""
    import pyomo.environ as pyo

    m = build_model(_hand_problem(), ModelOptions(counts=np.array([2.0, 3.0])))
    assert [(v.lb, v.ub) for v in m.x.values()] == [(0, 2), (0, 2), (0, 2), (0, 3), (0, 3)]
    assert all(v.domain is pyo.NonNegativeIntegers for v in m.x.values())
    assert [_read(m, r)[1:] for r in m.one_offer.values()] == [(2.0, 2.0), (3.0, 3.0)]
    assert _read(m, m.satisfaction_mean)[1] == pytest.approx(3.0)
    assert m.peak.lb == pytest.approx(max(10 - 2 * 2 - 3 * 0.5, 8 - 2 * 0.5 - 3 * 1.0))


def _with_voltage(**overrides):
    """The hand problem plus one monitored bus with only a lower limit (0.95 p.u.): S = (−0.01,
    −0.02) p.u./kW, base (0.951, 0.952). Step 1 can fall to 0.952 − 0.01·0.5 = 0.947 (customer 0
    on offer b adds 0.5 kW) — a row; step 0 cannot (no offer adds load then)."""
    import scipy.sparse as sp

    return _hand_problem(voltage_sensitivity_pu_per_kw=sp.csr_array([[-0.01, -0.02]]),
                         voltage_base_pu=np.array([[0.951], [0.952]]), voltage_min_pu=0.95,
                         **overrides)


def test_model_wiring_by_hand():
    """Named sets and options are kept; given peak steps are used as given; the ε row of a
    satisfaction sweep is built even where it could not bind; count mode relaxed is continuous;
    a one-sided voltage row ``0.95 − 0.952 ≤ 0.005·p1 − 0.005·p2 + 0.02·p4`` has no upper bound;
    the revenue rows are left out exactly when both reachable totals (−8 … 8) fit the band 8."""
    import pyomo.environ as pyo

    options = ModelOptions(peak_steps=np.array([1]))
    m = build_model(_hand_problem(), options)
    assert m.name == "offer-assignment" and m.options is options
    assert list(m.S) == [1] and list(m.I) == [0, 1]
    assert list(m.network_families) == ["trafo", "line"]
    loose = _hand_problem(satisfaction_floor_mean=0.1)
    assert build_model(loose).component("satisfaction_mean") is None
    swept = build_model(loose, ModelOptions(epsilon_row="satisfaction"))
    assert _read(swept, swept.satisfaction_mean)[1] == pytest.approx(0.2)
    relaxed = build_model(_hand_problem(), ModelOptions(counts=np.array([2.0, 3.0]), relax=True))
    assert all(v.domain is pyo.NonNegativeReals for v in relaxed.x.values())
    v = build_model(_with_voltage())
    assert v._network_rows[-1] == ("voltage", 0, 1)
    coefs, lower, upper = _read(v, list(v.network.values())[-1])
    assert coefs == pytest.approx({"p1": 0.005, "p2": -0.005, "p4": 0.02})
    assert (lower, upper) == (pytest.approx(-0.002), None)
    revenue = np.array([[0.0, -5.0, 8.0], [0.0, 0.0, -3.0]])
    fits = build_model(_hand_problem(revenue_change_eur=revenue, revenue_band_eur=8.0))
    assert fits.component("revenue_up") is None
    wide = build_model(_hand_problem(revenue_change_eur=revenue, revenue_band_eur=7.9))
    assert _read(wide, wide.revenue_down)[1] == pytest.approx(-7.9)
    one_side = build_model(_hand_problem(revenue_band_eur=9.0))      # −11 < −9, 8 ≤ 9
    assert _read(one_side, one_side.revenue_up)[2] == 9.0


def test_elastic_peak_cap_cost_and_voltage_slacks_by_hand():
    """Elastic with a peak cap of 9 kW and a cost sweep: ``peak − s_cap ≤ 9``, the cost row
    ``Σ cost·x − s_cost ≤ 58.5``, the lower voltage row ``… + s_v ≥ −0.002``; slacks are
    non-negative; scales: cap 0.01 (→ 100), cost 1, voltage 0.01 (→ 100)."""
    import pyomo.environ as pyo

    m = build_model(_with_voltage(), ModelOptions(elastic=True, peak_cap_kw=9.0,
                                                  epsilon_row="cost"))
    assert _read(m, m.peak_cap) == ({"peak": 1.0, "slack_peak_cap": -1.0}, None, 9.0)
    assert m.peak.ub is None
    assert _read(m, m.cost_cap)[0] == {"p1": 11.5, "p2": 33.0, "p4": 24.5, "slack_cost": -1.0}
    assert _read(m, list(m.network.values())[-1])[0]["slack_voltage_0"] == 1.0
    assert all(s.domain is pyo.NonNegativeReals for s in m.slacks.values())
    got, _ = _linear(m, m.objective.expr)
    assert got["slack_peak_cap"] == pytest.approx(100.0)
    assert got["slack_cost"] == pytest.approx(1.0)
    assert got["slack_voltage_0"] == pytest.approx(100.0)


def test_slack_scales_by_hand():
    """Each slack is scaled by its limit's magnitude, at least 1: budget, band, transformer and
    line limits of 1.5 stay 1.5 (0.5 becomes 1); cost 1; satisfaction and voltage 0.01."""
    from optimizer.model import _slack_scale

    p = _hand_problem(budget_eur=1.5, revenue_band_eur=1.5, trafo_limit_kw=np.array([1.5, 0.5]),
                      line_limit_kw=np.array([1.5]))
    names = ["budget", "revenue_up", "revenue_down", "cost", "satisfaction_mean", "trafo:0",
             "trafo:1", "line:0", "voltage:0", "peak_cap"]
    assert [_slack_scale(p, n) for n in names] == pytest.approx(
        [1.5, 1.5, 1.5, 1.0, 0.01, 1.5, 1.0, 1.5, 0.01, 0.01])
    q = _hand_problem(budget_eur=0.5, revenue_band_eur=0.5)
    assert [_slack_scale(q, n) for n in ("budget", "revenue_up")] == [1.0, 1.0]


def test_sweep_objectives_maximise():
    import pyomo.environ as pyo

    for row in ("satisfaction", "cost"):
        m = build_model(_hand_problem(), ModelOptions(objective="peak", epsilon_row=row))
        assert m.objective.sense == pyo.maximize


def test_matrix_rows_iterate_as_pyomo_writers_ask():
    """`MatrixRows` answers keys/values/items with Pyomo's sort arguments, rows in matrix order
    (the one-offer rows of customers 0 and 1), and gives each row as (lower, body, upper)."""
    m = build_model(_hand_problem())
    rows = m.one_offer
    assert list(rows.keys(sort=True)) == [0, 1]
    assert [i for i, _ in rows.items(sort=True)] == [0, 1]
    assert [r for _, r in rows.items()] == list(rows.values(sort=True))
    lower, body, upper = list(rows.values())[1].to_bounded_expression()
    assert (lower, upper) == (1.0, 1.0)
    assert _linear(m, body)[0] == {"p3": 1.0, "p4": 1.0}
