"""Hand a Pyomo model to HiGHS as matrices, and run HiGHS under an outside time limit.

Path: the model's `MatrixConstraint` blocks (their CSR arrays) and `LinearExpression` rows are
read into scipy CSC matrices (`read_linear_form`; the expression rows ~3× faster per nonzero than
Pyomo's `LinearStandardFormCompiler(mixed_form=True)`, which is the fallback for any other linear
model, and which SOLVER.md measured as the fastest stock Pyomo route), and go to HiGHS in one
array call of `highspy.Highs.passModel` (`pass_matrices`) — 4–6× faster than the APPSI /
`contrib.solver` interfaces, which add rows one by one from Python.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter

import highspy
import numpy as np
import pandas as pd
import pyomo.environ as pyo
import scipy.sparse as sp
from pyomo.common.numeric_types import native_numeric_types
from pyomo.core.base.matrix_constraint import MatrixConstraint
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from scenarios.errors import SolverError

#: Extra wall time granted after the time limit before HiGHS is asked to stop [s]; HiGHS does
#: not check its own limit inside root-node heuristics (SOLVER.md), so the driver enforces it.
TIME_LIMIT_GRACE_S = 2.0


@dataclass
class HighsModel:
    """A model loaded into HiGHS, with the map back to the Pyomo model's columns and rows.

    HiGHS minimises ``sign · objective`` (``sign = -1`` for a maximisation model).
    """

    highs: highspy.Highs
    x_col: np.ndarray              # [p] HiGHS column of x[p]
    peak_col: int
    slack_col: dict[str, int]
    row_of: dict                   # row label → HiGHS row(s): "budget", ("peak", t),
                                   # ("trafo"|"line"|"voltage", element, t), …
    sign: float
    n_rows: int
    n_cols: int
    nnz: int
    integer_cols: np.ndarray       # columns that are integer in the model
    timings: dict[str, float] = field(default_factory=dict)


def new_highs() -> highspy.Highs:
    """A silent HiGHS instance.

    HiGHS prints its banner on the C-level stdout when the first instance of a process is made,
    before any option can be set; results go to files and stdout carries gridflex's own
    summary, so stdout's file descriptor is pointed at /dev/null for that moment.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    h.silent()
    return h


@dataclass
class LinearForm:
    """A linear model as matrices: ``row_lower ≤ A·x ≤ row_upper``, minimise ``cost·x + offset``."""

    A: sp.csc_array           # [rows, columns]
    row_lower: np.ndarray
    row_upper: np.ndarray
    row_constraint: list      # Pyomo constraint data object of each row
    cost: np.ndarray          # [columns], minimisation form
    offset: float
    columns: list             # Pyomo variable data object of each column


def read_linear_form(model: pyo.ConcreteModel, columns: list) -> LinearForm | None:
    """Read a model whose constraints are `MatrixConstraint` components or have
    `LinearExpression` sums of monomials as bodies, and whose objective is such a sum (as
    `optimizer.model` builds them), straight into matrices.

    Same matrices as `LinearStandardFormCompiler` for such models, and much faster: a
    `MatrixConstraint` hands over its CSR arrays, its variable list mapped to columns once;
    other rows' monomials are gathered with C-level list operations and split into
    coefficients and variables in one pass; variables are mapped to columns by a hash table of
    their ids instead of an expression walker. Returns ``None`` as soon as anything else
    appears (another expression type, a variable outside ``columns``, a non-numeric
    coefficient, a row without variables), and the caller falls back to the compiler.
    """
    blocks: list = []   # CSR pieces, in row order
    lower: list = []
    upper: list = []
    rows: list = []
    pending = _MonomialRows()
    for comp in model.component_objects(pyo.Constraint, active=True, descend_into=True):
        if isinstance(comp, MatrixConstraint):
            if not pending.flush(columns, blocks, lower, upper):
                return None
            # The component's own CSR arrays and variable list (it has no public accessors).
            x = comp._x
            column = _column_index(columns, x, len(x))
            if column is None:
                return None
            n_rows = len(comp._lower)
            blocks.append(sp.csr_array(
                (np.asarray(comp._A_data, dtype=float), column[np.asarray(comp._A_indices)],
                 np.asarray(comp._A_indptr)), shape=(n_rows, len(columns))))
            lower.append(np.array([-np.inf if v is None else v for v in comp._lower], dtype=float))
            upper.append(np.array([np.inf if v is None else v for v in comp._upper], dtype=float))
            rows.extend(comp._data)
            continue
        for con in comp.values():
            if not con.active:
                continue
            if not pending.add(con):
                return None
            rows.append(con)
    if not pending.flush(columns, blocks, lower, upper) or not blocks:
        return None
    objectives = list(model.component_data_objects(pyo.Objective, active=True))
    if len(objectives) != 1 or objectives[0].expr.__class__ is not LinearExpression:
        return None
    args = objectives[0].expr._args_
    offset = 0.0
    if args and args[0].__class__ in native_numeric_types:
        offset = float(args[0])
        args = args[1:]
    terms = _monomial_terms(columns, args) if args else None
    if terms is None:
        return None
    sign = -1.0 if objectives[0].sense == pyo.maximize else 1.0
    cost = np.zeros(len(columns))
    np.add.at(cost, terms[1], terms[0])
    A = sp.csr_array(sp.vstack(blocks, format="csr"))
    A.sum_duplicates()
    A.eliminate_zeros()
    return LinearForm(A=sp.csc_array(A), row_lower=np.concatenate(lower),
                      row_upper=np.concatenate(upper), row_constraint=rows, cost=sign * cost,
                      offset=sign * offset, columns=columns)


class _MonomialRows:
    """Rows with `LinearExpression` bodies, gathered until `flush` turns them into CSR."""

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self.monomials: list = []
        self.indptr = [0]
        self.lower: list = []
        self.upper: list = []

    def add(self, con) -> bool:
        body = con.body
        if body.__class__ is not LinearExpression:
            return False
        args = body._args_
        shift = 0.0
        if args and args[0].__class__ in native_numeric_types:
            shift = float(args[0])
            args = args[1:]
        if not args:
            return False
        self.monomials.extend(args)
        self.indptr.append(len(self.monomials))
        lb, ub = con.lb, con.ub
        self.lower.append(-np.inf if lb is None else float(lb) - shift)
        self.upper.append(np.inf if ub is None else float(ub) - shift)
        return True

    def flush(self, columns: list, blocks: list, lower: list, upper: list) -> bool:
        """Append the gathered rows to ``blocks``/``lower``/``upper``; False if unreadable."""
        if not self.monomials:
            return True
        terms = _monomial_terms(columns, self.monomials)
        if terms is None:
            return False
        blocks.append(sp.csr_array((*terms, np.asarray(self.indptr)),
                                   shape=(len(self.indptr) - 1, len(columns))))
        lower.append(np.asarray(self.lower, dtype=float))
        upper.append(np.asarray(self.upper, dtype=float))
        self.clear()
        return True


def _monomial_terms(columns: list, monomials: list) -> tuple[np.ndarray, np.ndarray] | None:
    """Coefficients and columns of `MonomialTermExpression` terms, or ``None`` if a term is
    another expression, has a non-numeric coefficient or a variable outside ``columns``."""
    if set(map(type, monomials)) != {MonomialTermExpression}:
        return None
    terms = list(map(attrgetter("_args_"), monomials))  # (coefficient, variable) each
    try:
        values = np.fromiter(map(itemgetter(0), terms), dtype=float, count=len(terms))
    except (TypeError, ValueError):
        return None
    index = _column_index(columns, map(itemgetter(1), terms), len(terms))
    return None if index is None else (values, index)


def _column_index(columns: list, variables, count: int) -> np.ndarray | None:
    """Column of each of ``count`` variables (by object identity, through a hash table of the
    columns' ids), or ``None`` if one is not a column."""
    column_ids = pd.Index(np.fromiter(map(id, columns), dtype=np.int64, count=len(columns)))
    ids = np.fromiter(map(id, variables), dtype=np.int64, count=count)
    index = column_ids.get_indexer(ids)
    if count and index.min() < 0:
        return None
    return index


def compiled_form(model: pyo.ConcreteModel) -> LinearForm:
    """The model through `LinearStandardFormCompiler(mixed_form=True)` (any linear model)."""
    info = LinearStandardFormCompiler().write(model, mixed_form=True, set_sense=pyo.minimize)
    sense = np.fromiter((mult for _, mult in info.rows), dtype=np.int8, count=len(info.rows))
    rhs = np.asarray(info.rhs, dtype=float)
    row_lower = np.where(sense >= 0, -np.inf, rhs)
    row_lower[sense == 0] = rhs[sense == 0]
    row_upper = np.where(sense <= 0, np.inf, rhs)
    row_upper[sense == 0] = rhs[sense == 0]
    n_cols = len(info.columns)
    cost = info.c.toarray().ravel() if info.c.shape[0] else np.zeros(n_cols)
    return LinearForm(
        A=sp.csc_array(info.A), row_lower=row_lower, row_upper=row_upper,
        row_constraint=[con for con, _ in info.rows], cost=cost,
        offset=float(info.c_offset[0]) if len(info.c_offset) else 0.0,
        columns=list(info.columns),
    )


def to_highs(model: pyo.ConcreteModel, *, threads: int = 1) -> HighsModel:
    """Turn ``model`` into matrices (`read_linear_form`, else Pyomo's standard-form compiler)
    and pass them to a new `Highs` in one call."""
    x_vars = list(model.x.values())
    slack_vars = list(model.slacks.values())
    order = x_vars + [model.peak] + slack_vars
    with gc_paused():
        form = read_linear_form(model, order)
        if form is None:
            form = compiled_form(model)
    columns = form.columns
    n_cols = len(columns)
    # The compiler numbers columns in order of first appearance, which for this model is the
    # declaration order; check every column, and fall back to a lookup if it ever differs.
    if n_cols == len(order) and all(c is v for c, v in zip(columns, order, strict=False)):
        x_col = np.arange(len(x_vars))
        peak_col = len(x_vars)
        slack_col = {name: peak_col + 1 + j for j, name in enumerate(model.slacks)}
    else:
        position = {id(v): j for j, v in enumerate(columns)}
        x_col = np.array([position[id(v)] for v in x_vars])
        peak_col = position[id(model.peak)]
        slack_col = {name: position[id(v)] for name, v in model.slacks.items()}
    # Bounds as declared in `optimizer.model.add_choice_variables`, `add_peak_cap`, `add_slacks`.
    lower = np.zeros(n_cols)
    upper = np.full(n_cols, np.inf)
    upper[x_col] = model.pair_data.counts[model.pair_data.customer]
    lower[peak_col] = model.peak.lb if model.peak.lb is not None else -np.inf
    upper[peak_col] = model.peak.ub if model.peak.ub is not None else np.inf
    integer = np.zeros(n_cols, dtype=bool)
    if model.x[0].is_integer():
        integer[x_col] = True
    labels = {}
    for name in ("budget", "satisfaction_mean", "revenue_up", "revenue_down", "cost_cap",
                 "peak_cap"):
        con = model.component(name)
        if con is not None:
            labels[id(con)] = name
    for step, con in zip(model.S, model.peak_epigraph.values(), strict=True):
        labels[id(con)] = ("peak", step)
    network = model.component("network")
    if network is not None:
        for label, con in zip(model._network_rows, network.values(), strict=True):
            labels[id(con)] = label
    row_of: dict = {}
    for j, con in enumerate(form.row_constraint):
        label = labels.get(id(con))
        if label is not None:
            row_of.setdefault(label, []).append(j)

    h = new_highs()
    h.setOptionValue("threads", int(threads))
    pass_matrices(h, form.A, form.cost, form.offset, lower, upper, form.row_lower,
                  form.row_upper, integer)
    sign = -1.0 if model.objective.sense == pyo.maximize else 1.0
    return HighsModel(
        highs=h,
        x_col=x_col,
        peak_col=peak_col,
        slack_col=slack_col,
        row_of=row_of,
        sign=sign,
        n_rows=form.row_lower.size,
        n_cols=n_cols,
        nnz=int(form.A.nnz),
        integer_cols=np.flatnonzero(integer),
    )


def pass_matrices(h: highspy.Highs, A: sp.csc_array, cost: np.ndarray, offset: float,
                  col_lower: np.ndarray, col_upper: np.ndarray, row_lower: np.ndarray,
                  row_upper: np.ndarray, integer: np.ndarray) -> None:
    """Give ``h`` the model ``min cost·x + offset, row_lower ≤ A·x ≤ row_upper, col_lower ≤ x ≤
    col_upper, x[integer] ∈ ℤ`` in one call of the array form of ``passModel``.

    That form reads the NumPy buffers; filling a `highspy.HighsLp` attribute by attribute
    converts them element by element (0.28 s against 0.03 s at 1.27 M nonzeros, measured).
    """
    A = sp.csc_array(A)
    status = h.passModel(
        int(A.shape[1]), int(A.shape[0]), int(A.nnz), int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize), float(offset),
        np.ascontiguousarray(cost, dtype=np.float64),
        np.ascontiguousarray(col_lower, dtype=np.float64),
        np.ascontiguousarray(col_upper, dtype=np.float64),
        np.ascontiguousarray(row_lower, dtype=np.float64),
        np.ascontiguousarray(row_upper, dtype=np.float64),
        A.indptr.astype(np.int32), A.indices.astype(np.int32),
        np.ascontiguousarray(A.data, dtype=np.float64),
        # kInteger is 1, kContinuous 0; an all-zero vector leaves an LP.
        np.asarray(integer, dtype=np.int32),
    )
    if status == highspy.HighsStatus.kError:
        raise SolverError("HiGHS rejected the model (passModel)")


def set_start(hm: HighsModel, pairs, choice: np.ndarray) -> None:
    """Give HiGHS the assignment ``choice`` (offer per customer of ``pairs``) as its MIP start."""
    start = np.zeros(hm.n_cols)
    start[hm.x_col] = pairs.offer == choice[pairs.customer]
    solution = highspy.HighsSolution()
    solution.col_value = start
    solution.value_valid = True
    hm.highs.setSolution(solution)


@contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while millions of expression nodes are made.

    Generation-2 collections otherwise rescan the whole growing model again and again
    (build time per nonzero measured ×3.6 at 10k customers × 96 steps with collection on).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def status_text(h: highspy.Highs, status: highspy.HighsModelStatus) -> str:
    """HiGHS' model status in words; a stop by `run_with_deadline`'s watchdog (HiGHS says
    "Interrupted by user") is the time limit."""
    if status in (highspy.HighsModelStatus.kInterrupt, highspy.HighsModelStatus.kTimeLimit):
        return "time limit"
    return h.modelStatusToString(status)


def run_with_deadline(h: highspy.Highs, deadline: float, *, stop_below: float | None = None) -> bool:
    """Run HiGHS; give it ``time_limit`` up to ``deadline`` and stop a MIP that overruns.

    HiGHS releases the GIL while it runs, so a watchdog thread can raise a flag that a MIP
    interrupt callback turns into a stop. Only the MIP callback is used: the simplex/IPM
    interrupt callbacks fire every iteration and slowed an LP by more than 30× here. LPs rely
    on HiGHS' own time limit, which the simplex and IPX check.

    ``stop_below`` (MIP only) stops as soon as the incumbent's objective (HiGHS' minimisation
    form) is at or below it: a caller that holds a bound from elsewhere stops once its own gap
    target is met, instead of waiting for the MIP to prove it.

    Returns ``True`` when the run had to be stopped from outside.
    """
    remaining = max(deadline - time.perf_counter(), 0.01)
    h.setOptionValue("time_limit", remaining)
    stop = threading.Event()
    done = threading.Event()

    def on_mip_interrupt(event) -> None:
        if stop.is_set() or (
            stop_below is not None and event.data_out.mip_primal_bound <= stop_below
        ):
            event.interrupt()

    def watchdog() -> None:
        if not done.wait(remaining + TIME_LIMIT_GRACE_S):
            stop.set()

    relaxed = h.getOptionValue("solve_relaxation")
    if isinstance(relaxed, tuple):  # highspy returns (status, value)
        relaxed = relaxed[1]
    is_mip = bool(len(h.getLp().integrality_)) and not relaxed
    if is_mip:
        h.cbMipInterrupt += on_mip_interrupt
    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    try:
        h.run()
    finally:
        done.set()
        guard.join()
        if is_mip:
            h.cbMipInterrupt -= on_mip_interrupt
    return stop.is_set()
