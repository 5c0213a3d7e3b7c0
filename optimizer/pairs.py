"""NumPy preparation of the offer-assignment model: eligible pairs, row pruning, network rows.

Everything here is plain arrays, so that `model.py` only turns finished coefficient rows into
Pyomo components. Forbidden offers (tier rules, per-customer satisfaction floor) are removed
here: they become no column at all rather than a constraint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimizer.problem import OfferProblem, check_problem
from scenarios.errors import InfeasibleError

#: Customers per chunk when reducing over offers (bounds the temporary [c, k, t] arrays).
CHUNK_CUSTOMERS = 8192
#: A row whose worst case clears its limit by less than this is kept (numerical safety) [kW].
PRUNE_MARGIN_KW = 1e-9


@dataclass(frozen=True)
class CapacityRows:
    """Network rows ``lower ≤ Σ_p coef[row, p]·x[p] ≤ upper`` (base load moved to the bounds).

    ``family`` is "trafo", "line" or "voltage"; ``step`` and ``element`` label each row
    (design-step index, transformer/line/bus position); units are kW (p.u. for voltage).
    """

    family: str
    step: np.ndarray      # [rows] int64
    element: np.ndarray   # [rows] int64
    matrix: sp.csr_array  # [rows, p]
    lower: np.ndarray     # [rows], -inf where one-sided
    upper: np.ndarray     # [rows], +inf where one-sided


@dataclass(frozen=True)
class PairData:
    """Eligible customer × offer pairs (the model's columns) and the finished coefficient rows.

    Pairs are ordered by customer, then offer: customer ``i`` owns columns
    ``ptr[i]:ptr[i+1]``.
    """

    n_customers: int
    n_steps: int
    counts: np.ndarray        # [n] customers each row stands for (1, or cluster sizes)
    customer: np.ndarray      # [p] customer position
    offer: np.ndarray         # [p] offer position
    ptr: np.ndarray           # [n+1]
    incentive: np.ndarray     # [p] EUR
    bad_debt: np.ndarray      # [p] EUR
    satisfaction: np.ndarray  # [p] 0-1
    revenue: np.ndarray       # [p] EUR
    base_kw: np.ndarray       # [t] feeder load without offers [kW]
    load_min: np.ndarray      # [t] smallest reachable feeder load per step [kW]
    load_max: np.ndarray      # [t] largest reachable feeder load per step [kW]
    peak_steps: np.ndarray    # [s] steps that get an epigraph row
    peak_rows: sp.csr_array   # [s, p] Δ[p, step] on the kept steps [kW]
    capacity: tuple[CapacityRows, ...]
    base_peak_kw: float
    peak_lower_kw: float      # valid lower bound on any assignment's peak [kW]


def eligible_pairs(problem: OfferProblem) -> np.ndarray:
    """Mask [n, k] of pairs that may be chosen: tier/segment eligibility and the customer floor.

    Raises `InfeasibleError` naming the customers left without any offer.
    """
    ok = np.asarray(problem.eligible, dtype=bool) & (
        problem.satisfaction >= problem.satisfaction_floor_customer - 1e-12
    )
    empty = ~ok.any(axis=1)
    if empty.any():
        ids = problem.customer_ids[empty]
        best = problem.satisfaction[empty].max(axis=1)
        shown = ", ".join(str(c) for c in ids[:5]) + (" …" if ids.size > 5 else "")
        raise InfeasibleError(
            f"satisfaction_floor_customer {problem.satisfaction_floor_customer:g} leaves "
            f"{ids.size} customer(s) without any eligible offer (customers {shown}; their best "
            f"predicted satisfaction is {best.min():.3f})"
        )
    return ok


def customer_delta_range(problem: OfferProblem, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per customer and step, the smallest and largest Δ over allowed offers [n, t] [kW]."""
    n, _, t = problem.shape
    lo = np.empty((n, t))
    hi = np.empty((n, t))
    for a in range(0, n, CHUNK_CUSTOMERS):
        b = min(a + CHUNK_CUSTOMERS, n)
        d = problem.delta_kw[a:b]
        m = np.broadcast_to(ok[a:b, :, None], d.shape)
        np.min(d, axis=1, where=m, initial=np.inf, out=lo[a:b])
        np.max(d, axis=1, where=m, initial=-np.inf, out=hi[a:b])
    return lo, hi


def select_peak_steps(load_min: np.ndarray, load_max: np.ndarray) -> np.ndarray:
    """Steps that can set the peak: exact ("safe") pruning of epigraph rows.

    With ``L = max_t load_min[t]`` a lower bound on every assignment's peak, a step with
    ``load_max[t] ≤ L`` can never exceed the load of the step attaining ``L``, so its row
    ``peak ≥ load[t]`` is implied and dropped. The step attaining ``L`` is always kept.
    """
    lower = float(load_min.max())
    keep = load_max > lower + PRUNE_MARGIN_KW
    keep[int(np.argmax(load_min))] = True
    return np.flatnonzero(keep)


def build_pairs(
    problem: OfferProblem,
    peak_steps: np.ndarray | None = None,
    counts: np.ndarray | None = None,
) -> PairData:
    """Filter pairs, compute reachable load ranges, and build the epigraph and network rows.

    Parameters
    ----------
    problem
        The offer problem.
    peak_steps
        Design steps given epigraph rows; ``None`` keeps exactly the steps that can set the
        peak (`select_peak_steps`). A smaller set is a relaxation: the caller must re-check
        the assignment on all steps (see `optimizer.solve`).
    counts
        Customers each row of the problem stands for (cluster mode: the rows are clusters,
        their arrays the members' means, and ``x`` becomes an integer count); default 1.
    """
    check_problem(problem)
    n, k, t = problem.shape
    ok = eligible_pairs(problem)
    flat = np.flatnonzero(ok.ravel())
    customer = flat // k
    offer = flat % k
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(ok.sum(axis=1), out=ptr[1:])
    counts = np.ones(n) if counts is None else np.asarray(counts, dtype=float)
    cmin, cmax = customer_delta_range(problem, ok)
    cmin *= counts[:, None]
    cmax *= counts[:, None]
    base = np.asarray(problem.base_kw, dtype=float)
    load_min = base + cmin.sum(axis=0)
    load_max = base + cmax.sum(axis=0)
    if peak_steps is None:
        peak_steps = select_peak_steps(load_min, load_max)
    peak_steps = np.asarray(peak_steps, dtype=np.int64)
    delta = problem.delta_kw.reshape(n * k, t)
    kept = delta[np.ix_(flat, peak_steps)] if flat.size < n * k else delta[:, peak_steps]
    peak_rows = sp.csr_array(kept.T)
    peak_rows.eliminate_zeros()
    capacity = tuple(
        capacity_rows(problem, spec, flat, customer)
        for spec in network_specs(problem, ok, cmin, cmax, counts)
    )
    take = (customer, offer)
    return PairData(
        n_customers=n,
        n_steps=t,
        counts=counts,
        customer=customer,
        offer=offer,
        ptr=ptr,
        incentive=np.asarray(problem.incentive_eur, dtype=float)[take],
        bad_debt=np.asarray(problem.bad_debt_eur, dtype=float)[take],
        satisfaction=np.asarray(problem.satisfaction, dtype=float)[take],
        revenue=np.asarray(problem.revenue_change_eur, dtype=float)[take],
        base_kw=base,
        load_min=load_min,
        load_max=load_max,
        peak_steps=peak_steps,
        peak_rows=peak_rows,
        capacity=capacity,
        base_peak_kw=float(base.max()),
        peak_lower_kw=float(load_min.max()),
    )


@dataclass(frozen=True)
class NetworkSpec:
    """The network rows of one family that can bind, before any coefficient is formed.

    Row j: ``lower[j] ≤ Σ_i weights[element[j], i]·Δ[i, k, step[j]]·x[i,k] ≤ upper[j]`` with
    the base case moved into the bounds; ``weights`` is ``None`` for the dense transformer form
    (the coefficients are ``trafo_delta_kw[i, k, step, element]``).
    """

    family: str
    weights: sp.csr_array | None  # [e, n]
    step: np.ndarray              # [rows] int64
    element: np.ndarray           # [rows] int64
    lower: np.ndarray             # [rows]
    upper: np.ndarray             # [rows]


def network_specs(
    problem: OfferProblem, ok: np.ndarray, cmin: np.ndarray, cmax: np.ndarray, counts: np.ndarray
) -> tuple[NetworkSpec, ...]:
    """Transformer, line and voltage rows that some assignment could violate (exact pruning).

    A row is dropped when the extreme reachable change (positive weights times the per-customer
    largest Δ plus negative weights times the smallest, and vice versa) keeps it within its
    bounds for every assignment; ``cmin``/``cmax`` are already scaled by ``counts``.
    """
    specs = []
    n, k, t = problem.shape
    if problem.trafo_limit_kw is not None:
        limit = np.asarray(problem.trafo_limit_kw, dtype=float)
        base = np.asarray(problem.trafo_base_kw, dtype=float)
        if problem.trafo_delta_kw is None:
            specs.append(_incidence_spec("trafo", problem.trafo_customer, base,
                                         np.full(limit.size, -np.inf), limit, cmin, cmax))
        else:
            td = problem.trafo_delta_kw
            reach = base.copy()
            for a in range(0, n, CHUNK_CUSTOMERS):
                b = min(a + CHUNK_CUSTOMERS, n)
                top = np.where(ok[a:b, :, None, None], td[a:b], -np.inf).max(axis=1)
                reach += np.tensordot(counts[a:b], top, axes=1)
            steps, elements = np.nonzero(reach > limit[None, :] + PRUNE_MARGIN_KW)
            specs.append(NetworkSpec("trafo", None, steps.astype(np.int64),
                                     elements.astype(np.int64), np.full(steps.size, -np.inf),
                                     limit[elements] - base[steps, elements]))
    if problem.line_limit_kw is not None:
        limit = np.asarray(problem.line_limit_kw, dtype=float)
        specs.append(_incidence_spec("line", problem.line_customer,
                                     np.asarray(problem.line_base_kw, dtype=float),
                                     -limit, limit, cmin, cmax))
    if problem.voltage_sensitivity_pu_per_kw is not None:
        nb = problem.voltage_sensitivity_pu_per_kw.shape[0]
        specs.append(_incidence_spec("voltage", problem.voltage_sensitivity_pu_per_kw,
                                     np.asarray(problem.voltage_base_pu, dtype=float),
                                     np.full(nb, problem.voltage_min_pu),
                                     np.full(nb, problem.voltage_max_pu), cmin, cmax))
    return tuple(s for s in specs if s.step.size)


def _incidence_spec(family, weights, base, lower, upper, cmin, cmax) -> NetworkSpec:
    w = sp.csr_array(weights, dtype=float)
    w_pos = w.maximum(0)
    w_neg = w.minimum(0)
    reach_hi = (w_pos @ cmax + w_neg @ cmin).T + base   # [t, e]
    reach_lo = (w_pos @ cmin + w_neg @ cmax).T + base
    need = (reach_hi > upper[None, :] + PRUNE_MARGIN_KW) | (reach_lo < lower[None, :] - PRUNE_MARGIN_KW)
    steps, elements = np.nonzero(need)
    b = base[steps, elements]
    return NetworkSpec(family, w, steps.astype(np.int64), elements.astype(np.int64),
                       lower[elements] - b, upper[elements] - b)


def capacity_rows(
    problem: OfferProblem, spec: NetworkSpec, flat: np.ndarray, customer: np.ndarray
) -> CapacityRows:
    """The coefficient matrix [rows, p] of a family's binding rows."""
    n, k, t = problem.shape
    if spec.weights is None:
        td = problem.trafo_delta_kw.reshape(n * k, t, -1)
        matrix = sp.csr_array(td[:, spec.step, spec.element][flat].T)
    else:
        delta = problem.delta_kw.reshape(n * k, t)
        blocks = []
        w_pairs = sp.csc_array(spec.weights[:, customer])
        for step in np.unique(spec.step):
            els = spec.element[spec.step == step]
            d = delta[flat, step] if flat.size < delta.shape[0] else delta[:, step]
            blocks.append(sp.csr_array(w_pairs[els].multiply(d[None, :])))
        matrix = (
            sp.csr_array(sp.vstack(blocks, format="csr"))
            if blocks
            else sp.csr_array((0, customer.size))
        )
    matrix.eliminate_zeros()
    return CapacityRows(family=spec.family, step=spec.step, element=spec.element, matrix=matrix,
                        lower=spec.lower, upper=spec.upper)
