"""A certified upper bound on the per-customer optimum from any row prices (Lagrangian dual).

Keeping the one-offer-per-customer rows and dualising every coupling row with prices ``y``
gives, for the minimisation form ``min c·x  s.t.  lo ≤ A x ≤ hi,  x ∈ X`` (``X``: one offer
per customer, ``L ≤ peak ≤ P̄``),

``g(y) = Σ_r (y_r·lo_r if y_r > 0 else y_r·hi_r) + min_{x∈X} (c − Aᵀy)·x  ≤  optimum``

(weak duality; Geoffrion, Math. Prog. Study 2 (1974)). The inner minimum separates into one
cheapest offer per customer, so ``g`` costs a few passes over ``Δ[n, k, t]`` in NumPy — no model.
With the LP relaxation's own duals ``g`` equals the LP bound (the one-offer polytope is
integral); with prices from a clustered model it bounds the per-customer problem, which is how
cluster mode reports its error honestly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from optimizer.handoff import HighsModel
from optimizer.pairs import CHUNK_CUSTOMERS, eligible_pairs
from optimizer.problem import OfferProblem


@dataclass
class RowPrices:
    """HiGHS row duals of the minimisation form, by row meaning (0 where absent)."""

    peak: dict[int, float] = field(default_factory=dict)             # step → y
    scalar: dict[str, float] = field(default_factory=dict)           # "budget", … → y
    network: dict[tuple[str, int, int], float] = field(default_factory=dict)  # (family, e, t)


def row_prices(hm: HighsModel) -> RowPrices:
    """Collect the row duals of a solved LP in ``hm`` by row meaning."""
    y = np.asarray(hm.highs.getSolution().row_dual)
    prices = RowPrices()
    for label, rows in hm.row_of.items():
        value = float(sum(y[r] for r in rows))
        if isinstance(label, str):
            prices.scalar[label] = value
        elif label[0] == "peak":
            prices.peak[int(label[1])] = value
        else:
            prices.network[(label[0], int(label[1]), int(label[2]))] = value
    return prices


def _side(y: float, lo: float, hi: float) -> float:
    """Contribution of one row; a price on an infinite side is invalid and dropped."""
    if y > 0:
        return y * lo if np.isfinite(lo) else 0.0
    if y < 0:
        return y * hi if np.isfinite(hi) else 0.0
    return 0.0


def _valid(y: float, lo: float, hi: float) -> float:
    if (y > 0 and not np.isfinite(lo)) or (y < 0 and not np.isfinite(hi)):
        return 0.0
    return y


def lagrangian_bound(problem: OfferProblem, prices: RowPrices) -> float:
    """Upper bound on the per-customer maximum [EUR] for any row prices (see module docstring)."""
    n, k, t = problem.shape
    V = problem.peak_value_eur_per_kw
    base = np.asarray(problem.base_kw, dtype=float)
    ok = eligible_pairs(problem)
    # Pair costs of the minimisation form: c = −value.
    cost = (
        problem.incentive_weight * problem.incentive_eur
        + problem.bad_debt_weight * problem.bad_debt_eur
        - problem.satisfaction_value_eur * problem.satisfaction / n
    ).astype(float)
    constant = -V * float(base.max())
    # Peak rows: Σ Δ x − peak ≤ −base[t].
    y_peak = np.zeros(t)
    for step, y in prices.peak.items():
        y_peak[step] = _valid(y, -np.inf, -base[step])
        constant += _side(y_peak[step], -np.inf, -base[step])
    scalar_rows = {
        "budget": (problem.incentive_eur, -np.inf, problem.budget_eur),
        "satisfaction_mean": (problem.satisfaction, n * problem.satisfaction_floor_mean, np.inf),
        "revenue_up": (problem.revenue_change_eur, -np.inf, problem.revenue_band_eur),
        "revenue_down": (problem.revenue_change_eur, -problem.revenue_band_eur, np.inf),
    }
    for name, y in prices.scalar.items():
        if name not in scalar_rows:
            continue
        coef, lo, hi = scalar_rows[name]
        y = _valid(y, lo, hi)
        constant += _side(y, lo, hi)
        cost = cost - y * coef
    network = _network_prices(problem, prices)
    reduced = np.empty((n, k))
    for a in range(0, n, CHUNK_CUSTOMERS):
        b = min(a + CHUNK_CUSTOMERS, n)
        d = problem.delta_kw[a:b]
        adjust = d @ y_peak
        for _family, weights, y_grid in network["incidence"]:
            g = np.asarray(weights[:, a:b].T @ y_grid)  # [c, t]
            adjust += np.einsum("ikt,it->ik", d, g)
        if network["dense"] is not None:
            adjust += np.einsum("iktr,tr->ik", problem.trafo_delta_kw[a:b], network["dense"])
        reduced[a:b] = cost[a:b] - adjust
    constant += network["constant"]
    inner = np.where(ok, reduced, np.inf).min(axis=1).sum()
    d_peak = V + y_peak.sum()
    peak_lo, peak_hi = _peak_range(problem, ok)
    inner += d_peak * (peak_lo if d_peak >= 0 else peak_hi)
    return -(constant + inner)


def _peak_range(problem: OfferProblem, ok: np.ndarray) -> tuple[float, float]:
    from optimizer.pairs import customer_delta_range

    cmin, cmax = customer_delta_range(problem, ok)
    base = np.asarray(problem.base_kw, dtype=float)
    return float((base + cmin.sum(0)).max()), float((base + cmax.sum(0)).max())


def _network_prices(problem: OfferProblem, prices: RowPrices) -> dict:
    """Per family: weights [e, n] and valid prices [e, t]; plus their constant term."""
    t = problem.shape[2]
    out: dict = {"incidence": [], "dense": None, "constant": 0.0}
    families = {}
    if problem.trafo_limit_kw is not None:
        limit = np.asarray(problem.trafo_limit_kw, dtype=float)
        base = np.asarray(problem.trafo_base_kw, dtype=float)
        families["trafo"] = (
            None if problem.trafo_customer is None else sp.csc_array(problem.trafo_customer),
            base, np.full(limit.size, -np.inf), limit,
        )
    if problem.line_limit_kw is not None:
        limit = np.asarray(problem.line_limit_kw, dtype=float)
        families["line"] = (
            sp.csc_array(problem.line_customer), np.asarray(problem.line_base_kw, dtype=float),
            -limit, limit,
        )
    if problem.voltage_sensitivity_pu_per_kw is not None:
        nb = problem.voltage_sensitivity_pu_per_kw.shape[0]
        families["voltage"] = (
            sp.csc_array(problem.voltage_sensitivity_pu_per_kw),
            np.asarray(problem.voltage_base_pu, dtype=float),
            np.full(nb, problem.voltage_min_pu), np.full(nb, problem.voltage_max_pu),
        )
    for family, (weights, base, lower, upper) in families.items():
        grid = np.zeros((base.shape[1], t))
        for (fam, e, step), y in prices.network.items():
            if fam != family:
                continue
            lo, hi = lower[e] - base[step, e], upper[e] - base[step, e]
            y = _valid(y, lo, hi)
            grid[e, step] += y
            out["constant"] += _side(y, lo, hi)
        if family == "trafo" and weights is None:
            out["dense"] = grid.T
        else:
            out["incidence"].append((family, weights, grid))
    return out
