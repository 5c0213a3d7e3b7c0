"""The plan's window peak at a quantile and the marginal loss factor (`scenarios.planning`)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from scenarios.network_rows import Watched
from scenarios.planning import Plan, loss_factor


def _plan(planned, sd):
    return Plan(problem=None, solution=None, menu=None, design=None, events=np.zeros((0, 3)),
                dispatch=None, planned_kw=np.asarray(planned, float),
                planned_sd_kw=np.asarray(sd, float), expected_p_kw=np.zeros((1, 3)),
                watched=Watched(np.zeros(0, np.int64), np.zeros(0, np.int64)))


def test_planned_peak_at_a_quantile_by_hand():
    """Steps 100 ± 0, 98 ± 2, 120 ± 50 kW with step 2 not converged: the median peak is
    100 kW; the 90 % peak is max(100, 98 + 1.2816·2 = 100.563) = 100.563 kW; step 2 never
    counts."""
    plan = _plan([100.0, 98.0, 120.0], [0.0, 2.0, 50.0])
    converged = np.array([True, True, False])
    assert plan.planned_peak_kw(0.5, converged) == pytest.approx(100.0)
    assert plan.planned_peak_kw(0.9, converged) == pytest.approx(98.0 + 1.2815516 * 2.0)
    assert plan.planned_peak_kw(0.1, converged) == pytest.approx(100.0)


def test_loss_factor_is_one_plus_twice_the_loss_share():
    before = xr.Dataset({"p_slack_mw": ("time", [1.0, 2.0, 0.0, 1.0]),
                         "losses_mw": ("time", [0.02, 0.1, 0.0, 0.5])})
    factor = loss_factor(SimpleNamespace(before=before))
    np.testing.assert_allclose(factor, [1.04, 1.1, 1.0, 1.2])   # the last one clipped at 1.2
