"""Tiny random offer problems with every kind of limit, for exhaustive-search comparisons."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from optimizer.problem import OfferProblem


def make_tiny_problem(
    seed: int,
    n: int = 4,
    k: int = 3,
    t: int = 5,
    *,
    budget_eur: float = np.inf,
    satisfaction_floor_mean: float = 0.0,
    satisfaction_floor_customer: float = 0.0,
    revenue_band_eur: float = np.inf,
    trafo: bool = False,
    line: bool = False,
    trafo_limit_share: float = 0.97,
) -> OfferProblem:
    """Random but plausible problem: offers mostly cut load at the peak steps, at a price."""
    rng = np.random.default_rng(seed)
    base = 10.0 + rng.uniform(0.0, 3.0, t)
    delta = rng.normal(-0.6, 0.5, (n, k, t))
    delta[:, 0] = 0.0
    incentive = rng.uniform(0.0, 30.0, (n, k))
    incentive[:, 0] = 0.0
    bad_debt = rng.uniform(0.0, 3.0, (n, k))
    bad_debt[:, 0] = 0.0
    revenue = rng.normal(-5.0, 5.0, (n, k))
    revenue[:, 0] = 0.0
    satisfaction = rng.uniform(0.4, 0.95, (n, k))
    eligible = rng.uniform(size=(n, k)) > 0.2
    eligible[:, 0] = True
    fields: dict = {}
    if trafo:
        owner = rng.integers(0, 2, n)
        onehot = np.zeros((2, n))
        onehot[owner, np.arange(n)] = 1.0
        share = np.stack([base * 0.5 + 0.1 * s for s in range(2)], axis=1)  # [t, 2]
        fields.update(
            trafo_base_kw=share,
            trafo_limit_kw=trafo_limit_share * share.max(axis=0),
            trafo_delta_kw=delta[:, :, :, None] * onehot.T[:, None, None, :],
        )
    if line:
        downstream = (rng.integers(0, 2, n)[None, :] >= np.arange(2)[:, None]).astype(float)
        flow = np.stack([base * 0.8, base * 0.4], axis=1)
        fields.update(
            line_customer=sp.csr_array(downstream),
            line_base_kw=flow,
            line_limit_kw=0.98 * flow.max(axis=0),
        )
    return OfferProblem(
        customer_ids=np.arange(n, dtype=np.int64) + 100,
        offer_names=tuple(f"offer{j}" for j in range(k)),
        base_kw=base,
        delta_kw=delta,
        acceptance=np.full((n, k), 0.5),
        incentive_eur=incentive,
        bill_change_eur=revenue.copy(),
        revenue_change_eur=revenue,
        bad_debt_eur=bad_debt,
        satisfaction=satisfaction,
        eligible=eligible,
        step_h=0.25,
        peak_value_eur_per_kw=40.0,
        incentive_weight=1.0,
        bad_debt_weight=1.5,
        satisfaction_value_eur=20.0,
        budget_eur=budget_eur,
        satisfaction_floor_mean=satisfaction_floor_mean,
        satisfaction_floor_customer=satisfaction_floor_customer,
        revenue_band_eur=revenue_band_eur,
        **fields,
    )


@pytest.fixture
def tiny_problem():
    """Factory of tiny problems (see `make_tiny_problem`)."""
    return make_tiny_problem
