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


def test_model_reads_top_down(tiny_problem):
    m = build_model(tiny_problem(0, budget_eur=10.0, trafo=True))
    for name in ("x", "peak", "one_offer", "peak_epigraph", "budget", "network", "objective"):
        assert m.component(name) is not None
