"""The power-flow kernels' stopping rule, step by step on hand-made iteration histories.

`sim.pf_kernels._finish_converged` stops a step when its last voltage change is at most ``tol``,
or earlier when the changes contract: with ``ρ = change / last_change < ½`` the a-posteriori
bound ``ρ/(1 − ρ)·change`` (Ortega & Rheinboldt 1970, §12.1) must be at most ``tol``.

The guard ``ρ < ½`` only skips bounds that cannot pass: for ``½ ≤ ρ < 1`` the factor
``ρ/(1 − ρ)`` is ≥ 1 (exactly 1 at ½, also in floating point), so the bound is ≥ ``change`` > tol.
Moving the guard anywhere in [½, 1] (e.g. 0.9) is therefore an equivalent change on every grid;
beyond 1 a diverging step (ρ > 1, negative factor) would be called converged, which is caught
below.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.pf_kernels import _finish_converged

TOL = 1e-8


def _finish(change: float, last_change: float, it: int = 3, max_iter: int = 50):
    """One step, one bus (output column 0 of 1): returns (converged?, stopped?, its row)."""
    done = np.zeros(1, dtype=np.bool_)
    iterations = np.full(1, -1, dtype=np.int64)
    converged = np.zeros(1, dtype=np.bool_)
    v_out = np.zeros((1, 1), dtype=np.complex128)
    last = np.array([last_change])
    remaining = _finish_converged(it, 1, 0, 1, 1, TOL, max_iter, np.array([change * change]),
                                  last, done, np.array([[0.98]]), np.array([[-0.01]]),
                                  np.zeros(1, dtype=np.int64), np.zeros(2), v_out, iterations,
                                  converged)
    assert remaining == (0 if done[0] else 1)
    assert last[0] == pytest.approx(change, rel=1e-15)        # kept for the next iteration
    return bool(converged[0]), bool(done[0]), iterations[0], v_out[0, 0]


@pytest.mark.parametrize(("change", "last_change", "converged"), [
    (1.0e-8, 1.0e-3, True),     # change ≤ tol: converged whatever ρ
    (1.0e-8, 1.5e-8, True),     # change = tol exactly (√(x²) = x in IEEE), ρ = ⅔: converged
    (2.0e-8, 8.0e-8, True),     # ρ = ¼: bound ⅓·2e-8 = 6.7e-9 ≤ tol, stops early
    (2.0e-8, 5.0e-8, False),    # ρ = 0.4: bound ⅔·2e-8 = 1.3e-8 > tol (ρ·change alone: 8e-9)
    (4.0e-8, 8.0e-8, False),    # ρ = ½: guard not met (bound would be 4e-8 anyway)
    (2.0e-8, 2.5e-8, False),    # ρ = 0.8: bound 4·2e-8 = 8e-8 > tol
    (1.2e-8, 1.0e-8, False),    # ρ = 1.2: diverging, must never count as converged
    (3.0e-8, 1.0e-8, False),    # ρ = 3: diverging
])
def test_stopping_rule_by_hand(change, last_change, converged):
    ok, stopped, iterations, v = _finish(change, last_change)
    assert ok is converged and stopped is converged
    if converged:                                          # the row is written when it stops
        assert iterations == 3 and v == complex(0.98, -0.01)
    else:
        assert iterations == -1 and v == 0


def test_first_iteration_has_no_contraction_estimate_and_max_iter_stops_unconverged():
    assert _finish(2.0e-8, 8.0e-8, it=1)[:2] == (False, False)     # ρ needs two changes
    ok, stopped, iterations, v = _finish(5.0e-8, 1.0e-8, it=50, max_iter=50)
    assert (ok, stopped, iterations, v) == (False, True, 50, complex(0.98, -0.01))
