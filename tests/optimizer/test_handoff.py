"""The fast `LinearExpression` reader of the hand-off against Pyomo's standard-form compiler."""

from __future__ import annotations

import time

import numpy as np
import pyomo.environ as pyo
import pytest

from optimizer import handoff
from optimizer.handoff import read_linear_form, to_highs
from optimizer.model import ModelOptions, build_model
from optimizer.solve import solve_relaxation

#: Agreement of the two hand-offs' LP optima (relative).
LP_RTOL = 1e-9


def _lp_value(model, monkeypatch, reader: bool) -> float:
    if not reader:
        monkeypatch.setattr(handoff, "read_linear_form", lambda model, columns: None)
    hm = to_highs(model)
    monkeypatch.undo()
    status, _, _, value = solve_relaxation(hm, time.perf_counter() + 60)
    assert status == "optimal"
    return value


@pytest.mark.parametrize("elastic", [False, True])
def test_reader_and_compiler_give_the_same_lp(tiny_problem, monkeypatch, elastic):
    problem = tiny_problem(2, n=10, k=4, t=8, budget_eur=30.0, satisfaction_floor_mean=0.6,
                           revenue_band_eur=5.0, trafo=True, line=True)
    model = build_model(problem, ModelOptions(elastic=elastic))
    order = list(model.x.values()) + [model.peak] + list(model.slacks.values())
    assert read_linear_form(model, order) is not None
    fast = _lp_value(model, monkeypatch, reader=True)
    compiled = _lp_value(model, monkeypatch, reader=False)
    assert fast == pytest.approx(compiled, rel=LP_RTOL, abs=1e-9)


def test_other_expressions_fall_back_to_the_compiler(tiny_problem):
    problem = tiny_problem(0)
    model = build_model(problem)
    model.extra = pyo.Constraint(expr=model.x[0] + model.x[1] <= 1)   # bare variables
    order = list(model.x.values()) + [model.peak]
    assert read_linear_form(model, order) is None
    hm = to_highs(model)
    assert hm.n_rows == len(list(model.component_data_objects(pyo.Constraint, active=True)))
    assert np.isfinite(solve_relaxation(hm, time.perf_counter() + 60)[3])


def test_pyomo_lp_writer_sees_the_matrix_rows(tiny_problem, tmp_path, monkeypatch):
    # The rows built as `MatrixRows` are ordinary Pyomo constraints to Pyomo's own writer: the
    # LP file it writes, read by HiGHS, has the optimum of the fast hand-off.
    problem = tiny_problem(3, n=8, k=3, t=6, budget_eur=30.0, satisfaction_floor_mean=0.6,
                           trafo=True, line=True)
    model = build_model(problem, ModelOptions(relax=True))
    assert len(model.peak_epigraph) == len(model.S) and len(model.one_offer) == 8
    path = tmp_path / "model.lp"
    model.write(str(path), io_options={"symbolic_solver_labels": True})
    h = handoff.new_highs()
    h.readModel(str(path))
    h.run()
    written = h.getInfo().objective_function_value
    assert written == pytest.approx(_lp_value(model, monkeypatch, reader=True), rel=LP_RTOL)
    row = model.peak_epigraph[0]
    lower, body, upper = row.to_bounded_expression()
    assert lower is None and upper == pytest.approx(-problem.base_kw[model.S.at(1)])
    assert len(body.args) == model.pair_data.peak_rows[[0]].nnz + 1
