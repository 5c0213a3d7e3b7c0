"""The offer-assignment MILP as a Pyomo model, built top-down from finished NumPy rows.

Notation: customers ``i``, offers ``k``, eligible pairs ``p = (i, k)`` (forbidden pairs have no
column), design steps ``t``. ``x[p] ∈ {0, 1}`` chooses offer ``k`` for customer ``i``.
The row families that scale with customers × steps (one offer per customer, peak epigraph,
network limits) are Pyomo `MatrixConstraint` components: CSR arrays over a list of variables,
"fast construction of large linear constraint sets as it bypasses Pyomo's expression system"
(its docstring); each row's body is still a `LinearExpression` on request. The single rows
(budget, satisfaction, revenue, cost cap, peak cap) are `LinearExpression` objects built from the
same arrays (SOLVER.md: 5–6× cheaper than Set/Param rules).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sp
from pyomo.core.base.matrix_constraint import MatrixConstraint, _MatrixConstraintData
from pyomo.core.expr.numeric_expr import LinearExpression

from optimizer.handoff import gc_paused
from optimizer.pairs import PairData, build_pairs
from optimizer.problem import OfferProblem

#: Weight of the secondary criterion in the Pareto objective [kW per unit], small enough never
#: to trade peak reduction, large enough to pick the efficient point among equal peaks.
PARETO_TIE_BREAK = {"satisfaction": 1e-3, "cost": 1e-6}


@dataclass(frozen=True)
class ModelOptions:
    """How to build the model.

    Attributes
    ----------
    peak_steps
        Design steps that get an epigraph row; ``None`` keeps every step that can set the peak
        (exact pruning). A smaller set is a relaxation to be re-checked on all steps.
    counts
        Cluster mode: row ``i`` of the problem stands for ``counts[i]`` alike customers (its
        arrays hold their means) and ``x[p] ∈ {0, …, counts[i]}`` counts how many get the offer.
    relax
        Continuous ``0 ≤ x ≤ 1`` instead of binary (LP relaxation).
    elastic
        Add a non-negative slack per limit (budget, satisfaction mean, revenue band, each
        network element) and minimise the scaled slack instead of the value: the model behind
        the explanation of an infeasible problem.
    objective
        ``"value"``: the money objective of `add_objective`; ``"peak"``: peak reduction [kW]
        only, for ε-constraint Pareto sweeps.
    epsilon_row
        Always add this row, even when redundant, so that a sweep can move its bound:
        ``"satisfaction"`` (mean satisfaction ≥ ε) or ``"cost"`` (incentives + bad debt ≤ ε).
    peak_cap_kw
        Upper bound on the peak variable [kW]; the "never raise the peak" option sets the base
        peak (every kept step's load ≤ the cap; omitted steps are re-checked by the caller).
    """

    peak_steps: np.ndarray | None = None
    counts: np.ndarray | None = None
    relax: bool = False
    elastic: bool = False
    objective: Literal["value", "peak"] = "value"
    epsilon_row: Literal["satisfaction", "cost"] | None = None
    peak_cap_kw: float = np.inf


def build_model(problem: OfferProblem, options: ModelOptions | None = None) -> pyo.ConcreteModel:
    """Build the offer-assignment model (maximisation).

    The NumPy preparation (`optimizer.pairs.build_pairs`) is kept on the model as
    ``m.pair_data`` so that solution values map back to customers and offers in one place.
    """
    options = options or ModelOptions()
    pairs = build_pairs(problem, options.peak_steps, options.counts)
    with gc_paused():
        return _assemble(problem, pairs, options)


def _assemble(problem: OfferProblem, pairs: PairData, options: ModelOptions) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel(name="offer-assignment")
    m.pair_data = pairs
    m.options = options
    add_sets(m, pairs)
    add_choice_variables(m, pairs, relax=options.relax)
    add_slacks(m, pairs, elastic=options.elastic)
    add_peak_cap(m, options.peak_cap_kw)
    add_one_offer_per_customer(m, pairs)
    add_peak_epigraph(m, pairs)
    add_budget(m, problem, pairs)
    add_satisfaction_floor(m, problem, pairs, always=options.epsilon_row == "satisfaction")
    add_revenue_band(m, problem, pairs)
    add_cost_cap(m, problem, pairs, always=options.epsilon_row == "cost")
    add_network_limits(m, pairs)
    add_objective(m, problem, pairs, options)
    return m


def add_sets(m: pyo.ConcreteModel, pairs: PairData) -> None:
    """Index sets: pairs ``P``, customers ``I``, kept peak steps ``S ⊆ T``, network rows."""
    m.P = pyo.RangeSet(0, pairs.customer.size - 1)
    m.I = pyo.RangeSet(0, pairs.n_customers - 1)
    m.S = pyo.Set(initialize=pairs.peak_steps.tolist(), ordered=True)
    m.network_families = pyo.Set(initialize=[rows.family for rows in pairs.capacity], ordered=True)


def add_choice_variables(m: pyo.ConcreteModel, pairs: PairData, *, relax: bool) -> None:
    """``x[p] ∈ {0,1}`` (or ``[0,1]`` relaxed; ``{0..count_i}`` in cluster mode) and the
    feeder peak ``peak ≥ L`` [kW] (an upper cap: `add_peak_cap`).

    ``L = max_t (base[t] + Σ_i min_k Δ[i,k,t])`` is a valid lower bound on every assignment's
    peak and tightens the LP.
    """
    ones = bool(np.all(pairs.counts == 1.0))
    upper = pairs.counts[pairs.customer]
    if ones:
        m.x = pyo.Var(m.P, domain=pyo.UnitInterval if relax else pyo.Binary)
    else:
        domain = pyo.NonNegativeReals if relax else pyo.NonNegativeIntegers
        m.x = pyo.Var(m.P, domain=domain, bounds=lambda m, p: (0.0, float(upper[p])))
    m.peak = pyo.Var(domain=pyo.Reals, bounds=(pairs.peak_lower_kw, None))
    # One object array of the flat Var's members, so CSR index slices map to vars at C speed.
    xs = np.empty(pairs.customer.size, dtype=object)
    xs[:] = list(m.x.values())
    m._x_by_pair = xs


def add_slacks(m: pyo.ConcreteModel, pairs: PairData, *, elastic: bool) -> None:
    """Elastic mode only: a slack ``s_f ≥ 0`` per limit (family, element), in the limit's units.

    Families: ``budget`` [EUR], ``satisfaction_mean`` [-], ``revenue_up``/``revenue_down``
    [EUR], ``cost`` [EUR], and ``<network family>:<element>`` [kW or p.u.]. Each slack is
    created by the row it relaxes (`_slack`), so only limits present in the model get one.
    """
    m.elastic = elastic
    m.slacks = {}


def _row(coefs: np.ndarray, variables: list, constant: float = 0.0) -> LinearExpression:
    return LinearExpression(constant=constant, linear_coefs=coefs.tolist(), linear_vars=variables)


def _slack(m: pyo.ConcreteModel, name: str, sign: float) -> tuple[list[float], list]:
    """Coefficient and variable of limit ``name``'s slack, or nothing outside elastic mode."""
    if not m.elastic:
        return [], []
    if name not in m.slacks:
        var = pyo.Var(domain=pyo.NonNegativeReals)
        m.add_component("slack_" + name.replace(":", "_"), var)
        m.slacks[name] = var
    return [sign], [m.slacks[name]]


def add_peak_cap(m: pyo.ConcreteModel, cap_kw: float) -> None:
    """``peak ≤ cap`` [kW] (``ModelOptions.peak_cap_kw``, from ``limits.never_raise_peak``).

    A bound on the peak variable; in elastic mode a row with its own slack ``peak_cap``, so
    that an explanation of infeasibility can name it.
    """
    if not np.isfinite(cap_kw):
        return
    if not m.elastic:
        m.peak.setub(float(cap_kw))
        return
    coefs, extra = _slack(m, "peak_cap", -1.0)
    m.peak_cap = pyo.Constraint(expr=_row(np.array([1.0] + coefs), [m.peak] + extra)
                                <= float(cap_kw))


class _MatrixRowData(_MatrixConstraintData):
    """A row of `MatrixRows`: also gives ``(lower, body, upper)`` as Pyomo's writers ask."""

    __slots__ = ()

    def to_bounded_expression(self, evaluate_bounds=False):
        return self.lower, self.body, self.upper


class MatrixRows(MatrixConstraint):
    """Pyomo's `MatrixConstraint`, usable by Pyomo's writers and standard-form compiler.

    Pyomo 6.10's class inherits `collections.abc.Mapping`'s one-argument ``keys/values/items``,
    which `Block.component_data_objects` calls with a ``sort`` argument, and its rows lack
    ``to_bounded_expression``; both are supplied here (rows are always in matrix order).
    """

    def construct(self, data=None):
        if self._constructed:
            return
        self._constructed = True
        ref = weakref.ref(self)
        self._data = tuple(_MatrixRowData(i, ref) for i in range(len(self._lower)))

    def keys(self, sort=None, ordered=None):
        return iter(range(len(self._data)))

    def values(self, sort=None, ordered=None):
        return iter(self._data)

    def items(self, sort=None, ordered=None):
        return zip(range(len(self._data)), self._data, strict=True)


def _matrix_rows(matrix: sp.csr_array, lower: np.ndarray, upper: np.ndarray,
                 variables: list) -> MatrixRows:
    """``lower ≤ matrix · variables ≤ upper`` as one `MatrixRows` component (±inf: no bound)."""
    matrix = sp.csr_array(matrix)
    return MatrixRows(
        matrix.data.astype(float), matrix.indices.astype(np.int64), matrix.indptr.astype(np.int64),
        [float(v) if np.isfinite(v) else None for v in lower],
        [float(v) if np.isfinite(v) else None for v in upper],
        variables,
    )


def add_one_offer_per_customer(m: pyo.ConcreteModel, pairs: PairData) -> None:
    """``Σ_{k eligible for i} x[i,k] = count_i  ∀ i`` (1 per customer; status quo is eligible)."""
    n_pairs = pairs.customer.size
    rows = sp.csr_array((np.ones(n_pairs), np.arange(n_pairs), pairs.ptr),
                        shape=(pairs.n_customers, n_pairs))
    counts = np.asarray(pairs.counts, dtype=float)
    m.one_offer = _matrix_rows(rows, counts, counts, m._x_by_pair.tolist())


def add_peak_epigraph(m: pyo.ConcreteModel, pairs: PairData) -> None:
    """``Σ_p Δ[p,t]·x[p] − peak ≤ −base[t]  ∀ t ∈ S`` (i.e. ``peak ≥ base[t] + Σ_p Δ[p,t]·x[p]``).

    ``S`` holds the steps that can set the peak; the others are implied (`select_peak_steps`).
    Row ``j`` is step ``pairs.peak_steps[j]`` (the order of ``m.S``).
    """
    rows = sp.csr_array(pairs.peak_rows)
    peak_column = sp.csr_array(np.full((rows.shape[0], 1), -1.0))
    matrix = sp.hstack([rows, peak_column], format="csr")
    base = np.asarray(pairs.base_kw, dtype=float)[pairs.peak_steps]
    m.peak_epigraph = _matrix_rows(matrix, np.full(base.size, -np.inf), -base,
                                   m._x_by_pair.tolist() + [m.peak])


def add_budget(m: pyo.ConcreteModel, problem: OfferProblem, pairs: PairData) -> None:
    """``Σ_p incentive[p]·x[p] ≤ budget`` [EUR].

    Omitted when even the dearest choice per customer fits (the row could never bind).
    """
    dearest = pairs.counts @ np.maximum.reduceat(pairs.incentive, pairs.ptr[:-1])
    if not np.isfinite(problem.budget_eur) or dearest <= problem.budget_eur:
        return
    coefs, extra = _slack(m, "budget", -1.0)
    m.budget = pyo.Constraint(
        expr=_row(np.append(pairs.incentive, coefs), m._x_by_pair.tolist() + extra)
        <= problem.budget_eur
    )


def add_satisfaction_floor(
    m: pyo.ConcreteModel, problem: OfferProblem, pairs: PairData, *, always: bool = False
) -> None:
    """``Σ_p satisfaction[p]·x[p] ≥ n · floor_mean`` (mean predicted satisfaction).

    The per-customer floor ``satisfaction[i,k] ≥ floor_customer`` removed columns beforehand.
    Omitted when even the least satisfying choice per customer meets the floor, unless
    ``always`` (a Pareto sweep moves its bound).
    """
    n = float(pairs.counts.sum())
    worst = pairs.counts @ np.minimum.reduceat(pairs.satisfaction, pairs.ptr[:-1])
    if not always and worst >= n * problem.satisfaction_floor_mean:
        return
    coefs, extra = _slack(m, "satisfaction_mean", float(n))
    m.satisfaction_mean = pyo.Constraint(
        expr=_row(np.append(pairs.satisfaction, coefs), m._x_by_pair.tolist() + extra)
        >= n * problem.satisfaction_floor_mean
    )


def add_revenue_band(m: pyo.ConcreteModel, problem: OfferProblem, pairs: PairData) -> None:
    """``−band ≤ Σ_p revenue_change[p]·x[p] ≤ band`` [EUR] (revenue neutrality of the tariffs).

    Omitted when the band is infinite or every reachable total lies inside it.
    """
    band = problem.revenue_band_eur
    hi = pairs.counts @ np.maximum.reduceat(pairs.revenue, pairs.ptr[:-1])
    lo = pairs.counts @ np.minimum.reduceat(pairs.revenue, pairs.ptr[:-1])
    if not np.isfinite(band) or (hi <= band and lo >= -band):
        return
    xs = m._x_by_pair.tolist()
    up, up_x = _slack(m, "revenue_up", -1.0)
    down, down_x = _slack(m, "revenue_down", 1.0)
    m.revenue_up = pyo.Constraint(expr=_row(np.append(pairs.revenue, up), xs + up_x) <= band)
    m.revenue_down = pyo.Constraint(expr=_row(np.append(pairs.revenue, down), xs + down_x) >= -band)


def cost_coefficients(problem: OfferProblem, pairs: PairData) -> np.ndarray:
    """Weighted money cost per pair: ``w_inc·incentive + w_bd·bad_debt`` [EUR]."""
    return problem.incentive_weight * pairs.incentive + problem.bad_debt_weight * pairs.bad_debt


def add_cost_cap(
    m: pyo.ConcreteModel, problem: OfferProblem, pairs: PairData, *, always: bool
) -> None:
    """``Σ_p (w_inc·incentive[p] + w_bd·bad_debt[p])·x[p] ≤ ε`` [EUR], only for cost sweeps.

    Built with ``ε = +∞`` (a free row); the sweep sets its upper bound in the solver.
    """
    if not always:
        return
    coefs, extra = _slack(m, "cost", -1.0)
    m.cost_cap = pyo.Constraint(
        expr=pyo.inequality(
            None,
            _row(np.append(cost_coefficients(problem, pairs), coefs), m._x_by_pair.tolist() + extra),
            float(pairs.counts @ np.maximum.reduceat(cost_coefficients(problem, pairs), pairs.ptr[:-1]))
            + 1.0,
        )
    )


def add_network_limits(m: pyo.ConcreteModel, pairs: PairData) -> None:
    """Transformer, line and voltage rows that can bind, per family ``f``:

    ``lower[r] ≤ Σ_p W_f[r,p]·x[p] (− s_f,e) (+ s_f,e) ≤ upper[r]`` with the base-case
    load/flow/voltage already moved into ``lower``/``upper``; e.g. transformer
    ``trafo_base[t,r] + Σ_p Δ_r[p,t]·x[p] ≤ trafo_limit[r]``, radial line
    ``|line_base[t,l] + Σ_i downstream[l,i] Σ_k Δ[i,k,t]·x[i,k]| ≤ line_limit[l]``, voltage
    ``vmin ≤ v_base[t,b] + Σ_i S[b,i] Σ_k Δ[i,k,t]·x[i,k] ≤ vmax``. Rows that no assignment can
    violate were pruned exactly in `optimizer.pairs`.
    """
    blocks, lower, upper, slack_entries = [], [], [], []
    slack_column: dict[str, int] = {}   # elastic mode: element → column after the pairs
    slack_vars: list = []
    m._network_rows = []
    n_pairs = m._x_by_pair.size
    for rows in pairs.capacity:
        for j in range(rows.step.size):
            name = f"{rows.family}:{rows.element[j]}"
            # One slack per element relaxes the side that is finite (upper when both are).
            coef, var = _slack(m, name, -1.0 if np.isfinite(rows.upper[j]) else 1.0)
            if var:
                if name not in slack_column:
                    slack_column[name] = n_pairs + len(slack_vars)
                    slack_vars.append(var[0])
                slack_entries.append((len(m._network_rows), slack_column[name], coef[0]))
            m._network_rows.append((rows.family, int(rows.element[j]), int(rows.step[j])))
        blocks.append(sp.csr_array(rows.matrix))
        lower.append(rows.lower)
        upper.append(rows.upper)
    if not m._network_rows:
        return
    stacked = sp.vstack(blocks, format="csr")
    matrix = sp.csr_array((stacked.data, stacked.indices, stacked.indptr),
                          shape=(stacked.shape[0], n_pairs + len(slack_vars)))
    if slack_entries:
        r, c, v = (np.array(a) for a in zip(*slack_entries, strict=True))
        matrix = sp.csr_array(matrix + sp.csr_array((v, (r, c)), shape=matrix.shape))
        matrix.sort_indices()
    m.network = _matrix_rows(matrix, np.concatenate(lower), np.concatenate(upper),
                             m._x_by_pair.tolist() + slack_vars)


def add_objective(
    m: pyo.ConcreteModel, problem: OfferProblem, pairs: PairData, options: ModelOptions
) -> None:
    """Maximise, in EUR per season:

    ``V·(peak_base − peak) − w_inc·Σ_p incentive[p]·x[p] − w_bd·Σ_p bad_debt[p]·x[p]
    + v_sat·(1/n)·Σ_p satisfaction[p]·x[p]``

    with ``V = peak_value_eur_per_kw`` and ``peak_base = max_t base[t]``. For Pareto sweeps
    (``objective="peak"``) the objective is the peak reduction ``peak_base − peak`` [kW] plus a
    tiny tie-break on the swept criterion. In elastic mode: minimise
    ``Σ_f s_f / scale_f`` (scale = the limit's magnitude, at least 1).
    """
    xs = m._x_by_pair.tolist()
    if options.elastic:
        names = list(m.slacks)
        scale = np.array([_slack_scale(problem, name) for name in names])
        m.objective = pyo.Objective(
            expr=_row(1.0 / scale, [m.slacks[s] for s in names]), sense=pyo.minimize
        )
        return
    n = float(pairs.counts.sum())
    if options.objective == "peak":
        if options.epsilon_row == "cost":
            coefs = -PARETO_TIE_BREAK["cost"] * cost_coefficients(problem, pairs)
        else:
            coefs = PARETO_TIE_BREAK["satisfaction"] * pairs.satisfaction / n
        m.objective = pyo.Objective(
            expr=_row(np.append(coefs, -1.0), xs + [m.peak], constant=pairs.base_peak_kw),
            sense=pyo.maximize,
        )
        return
    value = problem.peak_value_eur_per_kw
    coefs = -cost_coefficients(problem, pairs) + problem.satisfaction_value_eur * pairs.satisfaction / n
    m.objective = pyo.Objective(
        expr=_row(np.append(coefs, -value), xs + [m.peak], constant=value * pairs.base_peak_kw),
        sense=pyo.maximize,
    )


def _slack_scale(problem: OfferProblem, name: str) -> float:
    if name == "budget":
        return max(float(problem.budget_eur), 1.0)
    if name.startswith("revenue"):
        return max(float(problem.revenue_band_eur), 1.0)
    if name == "cost":
        return 1.0
    if name == "satisfaction_mean":
        return 0.01
    family, _, element = name.partition(":")
    if family == "trafo":
        return max(float(np.asarray(problem.trafo_limit_kw)[int(element)]), 1.0)
    if family == "line":
        return max(float(np.asarray(problem.line_limit_kw)[int(element)]), 1.0)
    return 0.01
