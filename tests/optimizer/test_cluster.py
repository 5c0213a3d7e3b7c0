"""Cluster mode: strata keep rules exact, and the certified error bounds the real loss."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.assignment import evaluate_assignment
from optimizer.cluster import cluster_customers
from optimizer.pairs import eligible_pairs
from optimizer.solve import solve_offers
from optimizer.synthetic import synthetic_problem
from scenarios.schema import SolverConfig

CONFIG = SolverConfig(time_limit_s=60.0, mip_gap=1e-6)


@pytest.fixture(scope="module")
def problem():
    return synthetic_problem(150, offers=8, steps=48, seed=6, trafos=2, budget_eur=2500.0)


def test_clusters_share_allowed_offers_tier_and_transformer(problem):
    clustering = cluster_customers(problem, 40)
    ok = eligible_pairs(problem)
    assert clustering.counts.sum() == problem.shape[0]
    owner = np.asarray(problem.trafo_customer.todense()).argmax(axis=0)
    for c in range(clustering.counts.size):
        members = np.flatnonzero(clustering.label == c)
        assert (ok[members] == ok[members[0]]).all()
        assert (problem.customer_tier[members] == problem.customer_tier[members[0]]).all()
        assert (owner[members] == owner[members[0]]).all()


def test_cluster_error_is_within_its_reported_bound(problem):
    exact = solve_offers(problem, CONFIG, method="mip")
    clustered = solve_offers(problem, SolverConfig(time_limit_s=60.0, mip_gap=1e-4), method="cluster")
    assert not evaluate_assignment(problem, clustered.choice).violations
    # The Lagrangian bound from the clustered prices is a bound on the per-customer optimum …
    assert clustered.bound >= exact.objective - 1e-6
    # … so the real loss never exceeds the reported gap.
    loss = exact.objective - clustered.objective
    assert loss <= clustered.gap * max(abs(clustered.objective), 1.0) + 1e-6
    assert clustered.method == "cluster" and "clusters" in clustered.note


def test_singleton_clusters_reproduce_the_per_customer_optimum(tiny_problem):
    problem = tiny_problem(2, n=8, k=3, t=6)
    exact = solve_offers(problem, CONFIG, method="mip")
    import time

    from optimizer.cluster import solve_clustered

    single = solve_clustered(problem, CONFIG, deadline=time.perf_counter() + 60, clusters=8)
    assert single.objective == pytest.approx(exact.objective, rel=1e-6, abs=1e-6)
