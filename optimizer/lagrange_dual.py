"""The Lagrangian dual of the offer assignment, maximised without building the 10-million-nonzero LP.

Maximisation form over eligible pairs ``p = (i, k)`` (one offer per customer kept as the
"easy" constraint set ``X``) with coupling rows ``r``::

    max  Σ_p v[p]·x[p] − V·peak
    s.t. Σ_p a[r,p]·x[p] − e[r]·peak ≤ b[r]     (λ_r ≥ 0)
         x ∈ X,  L ≤ peak ≤ U

``e[r] = 1`` on the peak epigraph rows ``Σ Δ[p,t]·x − peak ≤ −base[t]``; the other rows are
the incentive budget, the mean-satisfaction floor, the revenue band and the transformer / line /
voltage rows (two-sided rows as two ``≤`` rows). For any ``λ ≥ 0``

``g(λ) = λ·b + Σ_i max_k (v − λ·a)[i,k] + max_{L≤peak≤U} (Σ_{r} e[r]λ_r − V)·peak  ≥  optimum``

(weak duality; Geoffrion, Math. Prog. Study 2 (1974)), and since ``X`` is integral its
minimum equals the LP relaxation's bound. The inner maximum is one pass over the pairs
(`optimizer.price_kernel`). ``min_λ g`` is reached by Dantzig–Wolfe column generation whose
restricted master holds, per group of customers, convex weights over the groups' past best
responses (the multi-cut form of Kelley's cutting-plane method on ``g``), stabilised by
Wentges' smoothing of the prices (Wentges, ITOR 4 (1997); Pessoa et al., INFORMS J. Comput.
30 (2018)). The master is a small LP (a few hundred rows) solved by HiGHS' simplex, warm.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp

from optimizer.handoff import new_highs
from optimizer.pairs import customer_delta_range, eligible_pairs, network_specs
from optimizer.price_kernel import best_offers
from optimizer.problem import OfferProblem

#: Customers per group of the disaggregated master (more groups: fewer iterations, larger LP).
GROUP_CUSTOMERS = 200
#: Most groups in the master.
MAX_GROUPS = 512
#: Wentges smoothing weight of the best prices so far in the separation point.
SMOOTHING = 0.5
#: Artificial cost per unit of violated row in the master, raised ×100 while it is used.
ARTIFICIAL_COST = 1e4
ARTIFICIAL_COST_MAX = 1e12
#: A master column must improve by more than this to be added [EUR].
REDUCED_COST_TOLERANCE = 1e-7
#: Artificial use below this counts as zero [row units].
ARTIFICIAL_TOLERANCE = 1e-6


@dataclass(frozen=True)
class CouplingRows:
    """Pairs and coupling rows of the maximisation form (see the module docstring).

    Per-step rows (peak epigraph and network) have coefficients ``a[r,p] = w_r(i)·signal[p, s_r]``
    with one signal column ``s_r`` (Δ at a design step, or a dense transformer change) and a
    per-customer weight ``w_r`` (``scale[r]`` for all customers where ``uniform[r]``, else row
    ``r`` of ``weight``). Scalar rows have a coefficient per pair.
    """

    n: int
    ptr: np.ndarray           # [n+1]
    offer: np.ndarray         # [p]
    value: np.ndarray         # [p] v [EUR]
    signal: np.ndarray        # [p, q] [kW]
    signal_step: np.ndarray   # [q] design step of each signal
    peak_steps: np.ndarray    # [s] steps with an epigraph row
    exact_steps: np.ndarray   # steps that can set the peak (exact pruning); ⊇ peak_steps if lazy
    row_signal: np.ndarray    # [R] signal column of each per-step row
    uniform: np.ndarray       # [R] bool
    scale: np.ndarray         # [R] weight of uniform rows (±1)
    weight: sp.csr_array      # [R, n] weights of the other rows (zero rows where uniform)
    row_rhs: np.ndarray       # [R]
    row_peak: np.ndarray      # [R] bool: epigraph row (−peak term)
    row_label: list           # ("peak", t) | (family, element, t, "up"/"down")
    scalar_coef: np.ndarray   # [S, p]
    scalar_rhs: np.ndarray    # [S]
    scalar_label: list        # "budget", "satisfaction_mean", "revenue_up", "revenue_down"
    peak_value: float         # V [EUR/kW]
    peak_lower: float         # L [kW]
    peak_upper: float         # U [kW]
    constant: float           # V·base peak [EUR]

    @property
    def n_rows(self) -> int:
        return self.row_rhs.size + self.scalar_rhs.size


def coupling_rows(
    problem: OfferProblem,
    peak_steps: np.ndarray | None = None,
    peak_cap_kw: float = np.inf,
    *,
    candidates_only: bool = False,
) -> CouplingRows:
    """Pairs, values and every coupling row that can bind.

    ``peak_steps`` (default: the exact set of `optimizer.pairs.select_peak_steps`) get an
    epigraph row; a smaller set is a relaxation, so ``g`` stays an upper bound. With
    ``candidates_only`` (and no ``peak_steps``) only the exact set's steps whose base load is
    above the peak lower bound ``L`` get one (`candidate_steps`), the rest being added lazily
    by the caller. Network rows are pruned exactly (`optimizer.pairs.network_specs`).
    ``peak_cap_kw`` is an upper bound on the peak (``U``; the "never raise the peak" option
    sets the base peak).
    """
    from optimizer.pairs import select_peak_steps

    n, k, t = problem.shape
    ok = eligible_pairs(problem)
    flat = np.flatnonzero(ok.ravel())
    customer = flat // k
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(ok.sum(axis=1), out=ptr[1:])
    cmin, cmax = customer_delta_range(problem, ok)
    base = np.asarray(problem.base_kw, dtype=float)
    load_min = base + cmin.sum(axis=0)
    load_max = base + cmax.sum(axis=0)
    exact_steps = select_peak_steps(load_min, load_max)
    if peak_steps is None:
        peak_steps = (candidate_steps(base, exact_steps, float(load_min.max()))
                      if candidates_only else exact_steps)
    peak_steps = np.unique(np.asarray(peak_steps, dtype=np.int64))
    specs = network_specs(problem, ok, cmin, cmax, np.ones(n))
    feeder_steps = np.unique(np.concatenate(
        [peak_steps] + [s.step for s in specs if s.weights is not None]))
    column_of = {int(s): j for j, s in enumerate(feeder_steps)}
    delta = problem.delta_kw.reshape(n * k, t)
    # Select the steps first: gathering whole rows of Δ would copy [p, t] (0.8 GB at 100k).
    pieces = [delta[:, feeder_steps][flat] if flat.size < n * k else delta[:, feeder_steps]]
    signal_step = list(feeder_steps)
    row_signal, uniform, scale, rhs, is_peak, labels = [], [], [], [], [], []
    weight_rows: list = []
    for s in peak_steps:
        row_signal.append(column_of[int(s)])
        uniform.append(True)
        scale.append(1.0)
        rhs.append(-base[s])
        is_peak.append(True)
        labels.append(("peak", int(s)))
        weight_rows.append(None)
    q = feeder_steps.size
    for spec in specs:
        if spec.weights is None:
            # Dense transformer changes: one signal column per row.
            td = problem.trafo_delta_kw.reshape(n * k, t, -1)
            pieces.append(td[:, spec.step, spec.element][flat])
            signal_step.extend(spec.step.tolist())
            cols = q + np.arange(spec.step.size)
            q += spec.step.size
        else:
            cols = np.array([column_of[int(s)] for s in spec.step])
        for j in range(spec.step.size):
            for side, bound, sign in (("up", spec.upper[j], 1.0), ("down", spec.lower[j], -1.0)):
                if not np.isfinite(bound):
                    continue
                row_signal.append(int(cols[j]))
                rhs.append(sign * bound)
                is_peak.append(False)
                labels.append((spec.family, int(spec.element[j]), int(spec.step[j]), side))
                if spec.weights is None:
                    uniform.append(True)
                    scale.append(sign)
                    weight_rows.append(None)
                else:
                    uniform.append(False)
                    scale.append(0.0)
                    weight_rows.append(sign * spec.weights[[int(spec.element[j])]])
    weight = sp.csr_array(sp.vstack(
        [w if w is not None else sp.csr_array((1, n)) for w in weight_rows], format="csr"
    )) if weight_rows else sp.csr_array((0, n))
    take = (customer, flat % k)
    incentive = np.asarray(problem.incentive_eur, dtype=float)[take]
    satisfaction = np.asarray(problem.satisfaction, dtype=float)[take]
    revenue = np.asarray(problem.revenue_change_eur, dtype=float)[take]
    value = (
        -problem.incentive_weight * incentive
        - problem.bad_debt_weight * np.asarray(problem.bad_debt_eur, dtype=float)[take]
        + problem.satisfaction_value_eur * satisfaction / n
    )
    scalar_coef, scalar_rhs, scalar_label = [], [], []

    def per_customer(reduce, a):
        return float(reduce.reduceat(a, ptr[:-1]).sum())

    if np.isfinite(problem.budget_eur) and per_customer(np.maximum, incentive) > problem.budget_eur:
        scalar_coef.append(incentive)
        scalar_rhs.append(problem.budget_eur)
        scalar_label.append("budget")
    floor = n * problem.satisfaction_floor_mean
    if per_customer(np.minimum, satisfaction) < floor:
        scalar_coef.append(-satisfaction)
        scalar_rhs.append(-floor)
        scalar_label.append("satisfaction_mean")
    band = problem.revenue_band_eur
    if np.isfinite(band) and (per_customer(np.maximum, revenue) > band
                              or per_customer(np.minimum, revenue) < -band):
        scalar_coef += [revenue, -revenue]
        scalar_rhs += [band, band]
        scalar_label += ["revenue_up", "revenue_down"]
    V = float(problem.peak_value_eur_per_kw)
    signal = np.ascontiguousarray(np.hstack(pieces) if len(pieces) > 1 else pieces[0])
    return CouplingRows(
        n=n, ptr=ptr, offer=(flat % k).astype(np.int64), value=value, signal=signal,
        signal_step=np.asarray(signal_step, dtype=np.int64), peak_steps=peak_steps,
        exact_steps=exact_steps,
        row_signal=np.asarray(row_signal, dtype=np.int64), uniform=np.asarray(uniform, dtype=bool),
        scale=np.asarray(scale), weight=weight, row_rhs=np.asarray(rhs, dtype=float),
        row_peak=np.asarray(is_peak, dtype=bool), row_label=labels,
        scalar_coef=np.asarray(scalar_coef, dtype=float).reshape(len(scalar_coef), flat.size),
        scalar_rhs=np.asarray(scalar_rhs, dtype=float), scalar_label=scalar_label,
        peak_value=V, peak_lower=float(load_min.max()), peak_upper=float(peak_cap_kw),
        constant=V * float(base.max()),
    )


def candidate_steps(base: np.ndarray, exact_steps: np.ndarray, peak_lower: float) -> np.ndarray:
    """Steps whose base load already exceeds the reachable peak lower bound ``L``.

    Only these get an epigraph row at first; a step that only a rebound could push above the
    peak is added lazily when a solution does so. The exact set's step of largest base load
    is always kept.
    """
    keep = exact_steps[base[exact_steps] > peak_lower]
    anchor = exact_steps[np.argmax(base[exact_steps])]
    return np.union1d(keep, [anchor])


@dataclass
class Response:
    """The Lagrangian subproblem's answer at one price vector."""

    bound: float              # g(λ) [EUR], including the constant V·base peak
    pair: np.ndarray          # [n] chosen pair per customer
    margin: np.ndarray        # [n] best − second-best reduced value [EUR]


def customer_prices(rows: CouplingRows, lam_rows: np.ndarray) -> np.ndarray:
    """Per-customer price of each signal column, ``π[i, s] = Σ_{r: s_r = s} λ_r·w_r(i)`` [n, q]."""
    q = rows.signal.shape[1]
    onehot = np.zeros((rows.row_rhs.size, q))
    onehot[np.arange(rows.row_rhs.size), rows.row_signal] = lam_rows
    flat_part = (rows.scale * rows.uniform) @ onehot        # [q]
    price = np.broadcast_to(flat_part, (rows.n, q)).copy()
    if (~rows.uniform).any():
        price += np.asarray(rows.weight.T @ onehot)
    return price


def respond(rows: CouplingRows, lam: np.ndarray) -> Response:
    """Evaluate ``g(λ)`` and each customer's best response (``lam``: per-step rows, then scalar)."""
    R = rows.row_rhs.size
    lam_rows, lam_scalar = lam[:R], lam[R:]
    value = rows.value - lam_scalar @ rows.scalar_coef if lam_scalar.size else rows.value
    pair, top, runner_up = best_offers(rows.ptr, rows.signal, value, customer_prices(rows, lam_rows))
    slope = float(lam_rows[rows.row_peak].sum()) - rows.peak_value
    if slope <= 0:
        peak_term = slope * rows.peak_lower
    else:
        peak_term = slope * rows.peak_upper if np.isfinite(rows.peak_upper) else np.inf
    rhs = np.concatenate([rows.row_rhs, rows.scalar_rhs])
    bound = float(lam @ rhs + top.sum() + peak_term) + rows.constant
    return Response(bound=bound, pair=pair, margin=top - runner_up)


def group_columns(rows: CouplingRows, pair: np.ndarray, starts: np.ndarray):
    """Per group (customers ``starts[g]:starts[g+1]``): value [G] and row activities [rows, G]."""
    value = np.add.reduceat(rows.value[pair], starts[:-1])
    chosen = rows.signal[pair]                                     # [n, q]
    sums = np.add.reduceat(chosen, starts[:-1], axis=0)            # [G, q]
    act = (sums[:, rows.row_signal] * rows.scale).T                # [R, G], uniform rows
    if (~rows.uniform).any():
        G = starts.size - 1
        member = sp.csr_array(
            (np.ones(rows.n), (np.arange(rows.n), np.repeat(np.arange(G), np.diff(starts)))),
            shape=(rows.n, G),
        )
        nonuniform = sp.csr_array(rows.weight.multiply(chosen[:, rows.row_signal].T)) @ member
        act = act + nonuniform.toarray()
    if rows.scalar_rhs.size:
        scalar = np.add.reduceat(rows.scalar_coef[:, pair], starts[:-1], axis=1)
        act = np.vstack([act, scalar])
    return value, act


@dataclass
class DualResult:
    """Best prices found and the evidence of convergence."""

    lam: np.ndarray           # [rows] best prices (per-step rows, then scalar rows)
    best: Response            # g at ``lam`` and the responses there
    master_value: float       # restricted master optimum [EUR] (≤ LP bound ≤ best.bound)
    iterations: int
    status: str               # "converged", "time limit", "iteration limit", "infeasible"
    artificial: float         # artificial use in the last master [row units]
    history: list = field(default_factory=list)  # (seconds, g best, master value)


def maximise_dual(
    rows: CouplingRows,
    *,
    tolerance: float,
    deadline: float,
    max_iterations: int = 400,
    start: np.ndarray | None = None,
    threads: int = 1,
) -> DualResult:
    """Minimise ``g`` (the best bound) by stabilised column generation.

    Stops when ``g_best − master ≤ tolerance·max(|master|, 1 EUR)`` (the master optimum is a
    lower bound on the LP bound, so the dual is then within the tolerance of it), at the
    deadline, or when the master still needs artificial slack at the largest artificial cost
    (the LP relaxation, hence the problem, is infeasible).
    """
    n = rows.n
    n_groups = int(np.clip(n // GROUP_CUSTOMERS, 1, MAX_GROUPS))
    starts = np.linspace(0, n, n_groups + 1).round().astype(np.int64)
    m = rows.n_rows
    rhs = np.concatenate([rows.row_rhs, rows.scalar_rhs])
    master = _Master(rows, rhs, n_groups, threads)
    lam_best = np.zeros(m) if start is None else np.maximum(start, 0.0)
    best = respond(rows, lam_best)
    status_quo = rows.ptr[:-1].copy()
    for pair in (status_quo, best.pair):
        master.add(*group_columns(rows, pair, starts), np.ones(n_groups, dtype=bool))
    if start is not None:
        master.add(*group_columns(rows, respond(rows, np.zeros(m)).pair, starts),
                   np.ones(n_groups, dtype=bool))
    history = []
    t0 = time.perf_counter()
    iterations = 0
    status = "iteration limit"
    artificial = np.inf
    z = -np.inf
    while iterations < max_iterations:
        iterations += 1
        z, lam_m, sigma, artificial = master.solve(deadline)
        if z is None:
            status = "time limit"
            break
        gap = best.bound - (z + rows.constant)
        history.append((time.perf_counter() - t0, best.bound, z + rows.constant))
        if artificial <= ARTIFICIAL_TOLERANCE and gap <= tolerance * max(abs(z + rows.constant), 1.0):
            status = "converged"
            break
        if time.perf_counter() >= deadline:
            status = "time limit"
            break
        added = 0
        for alpha in (SMOOTHING, 0.0):
            lam = alpha * lam_best + (1 - alpha) * lam_m
            resp = respond(rows, lam)
            if resp.bound < best.bound:
                lam_best, best = lam, resp
            value, act = group_columns(rows, resp.pair, starts)
            reduced = value - lam_m @ act - sigma
            improving = reduced > REDUCED_COST_TOLERANCE * np.maximum(1.0, np.abs(value))
            added = int(improving.sum())
            if added:
                master.add(value, act, improving)
                break
        if added:
            continue
        # No column prices out at the master's own duals: the master holds the LP optimum of
        # the penalised problem. Artificial use left means a price beyond the artificial cost
        # or an infeasible LP.
        if artificial <= ARTIFICIAL_TOLERANCE:
            status = "converged"
            break
        if master.cost >= ARTIFICIAL_COST_MAX:
            status = "infeasible"
            break
        master.raise_cost()
    return DualResult(lam=lam_best, best=best, master_value=z + rows.constant if z is not None
                      else -np.inf, iterations=iterations, status=status,
                      artificial=float(artificial), history=history)


class _Master:
    """Restricted Dantzig–Wolfe master in HiGHS (minimisation of −value).

    Columns: ``peak`` (cost V, bounds [L, U]), one artificial per coupling row (cost M), then
    the group columns. Rows: the coupling rows (≤ rhs), then one convexity row per group (= 1).
    """

    def __init__(self, rows: CouplingRows, rhs: np.ndarray, n_groups: int, threads: int):
        self.m = rhs.size
        self.n_groups = n_groups
        self.cost = ARTIFICIAL_COST
        h = new_highs()
        h.setOptionValue("threads", int(threads))
        h.setOptionValue("solver", "simplex")
        inf = highspy.kHighsInf
        lower = np.concatenate([np.full(self.m, -inf), np.ones(n_groups)])
        upper = np.concatenate([rhs, np.ones(n_groups)])
        h.addRows(lower.size, lower, upper, 0, np.zeros(lower.size, np.int32),
                  np.zeros(0, np.int32), np.zeros(0))
        peak_rows = np.flatnonzero(np.append(rows.row_peak, np.zeros(rows.scalar_rhs.size, bool)))
        cap = rows.peak_upper if np.isfinite(rows.peak_upper) else inf
        h.addCol(rows.peak_value, rows.peak_lower, cap, peak_rows.size,
                 peak_rows.astype(np.int32), -np.ones(peak_rows.size))
        idx = np.arange(self.m, dtype=np.int32)
        h.addCols(self.m, np.full(self.m, self.cost), np.zeros(self.m), np.full(self.m, inf),
                  self.m, idx, idx, -np.ones(self.m))
        self.h = h

    def raise_cost(self) -> None:
        self.cost *= 100.0
        cols = np.arange(1, self.m + 1, dtype=np.int32)
        self.h.changeColsCost(cols.size, cols, np.full(cols.size, self.cost))

    def add(self, value: np.ndarray, act: np.ndarray, which: np.ndarray) -> None:
        groups = np.flatnonzero(which)
        block = np.vstack([act[:, groups], np.zeros((self.n_groups, groups.size))])
        block[self.m + groups, np.arange(groups.size)] = 1.0
        csc = sp.csc_array(block)
        csc.eliminate_zeros()
        self.h.addCols(groups.size, -value[groups], np.zeros(groups.size),
                       np.full(groups.size, highspy.kHighsInf), csc.nnz,
                       csc.indptr[:-1].astype(np.int32), csc.indices.astype(np.int32), csc.data)

    def solve(self, deadline: float):
        """Solve; return (value, λ ≥ 0 [rows], convexity duals [G] in value terms, artificial)."""
        h = self.h
        h.setOptionValue("time_limit", max(deadline - time.perf_counter(), 0.01))
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None, None, None, np.inf
        sol = h.getSolution()
        duals = np.asarray(sol.row_dual)
        lam = np.maximum(-duals[: self.m], 0.0)
        sigma = -duals[self.m:]
        artificial = float(np.asarray(sol.col_value)[1: self.m + 1].sum())
        return -h.getInfo().objective_function_value, lam, sigma, artificial
