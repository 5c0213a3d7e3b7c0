"""Batched power flow against pandapower ``runpp`` at tight tolerance, and kernels vs twins."""

from __future__ import annotations

import copy
import dataclasses
import zlib

import numba
import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from scenarios.errors import InputError
from sim import pf_kernels, pf_simd, powerflow
from sim.pf_simd import LANES
from sim.powerflow import (
    REFERENCE_TOLERANCE_MVA,
    SOLVER_CODES,
    VOLTAGE_TOLERANCE_PU,
    prepare_grid,
    run_timeseries,
    solve,
    step_injections,
)
from tests.reference import powerflow as twin
from tests.sim.conftest import BUNDLED_GRIDS

VM_ATOL_PU = 1e-6          # |Δvm| vs pandapower runpp
VA_ATOL_DEGREE = 1e-4      # |Δva|
LOADING_ATOL_PCT = 1e-4    # |Δloading| in percentage points
CURRENT_ATOL_KA = 1e-7
POWER_ATOL_MW = 1e-6       # slack P/Q and losses
KERNEL_TWIN_ATOL_PU = 1e-10  # kernel vs SciPy twin: both stop within 1e-11 of the fixed point
BRANCH_TWIN_RTOL = 1e-12
ANGLE_TWIN_ATOL_DEGREE = 1e-12  # series atan2 vs libm: measured ≤ 3e-14 degree on the whole circle


def random_injections(net, n_steps, seed):
    """Loads at 0–150 % of rating, sgens at 0–100 %, as [time, element] arrays."""
    rng = np.random.default_rng(seed)
    load_p = net.load.p_mw.to_numpy() * rng.uniform(0.0, 1.5, (n_steps, len(net.load)))
    load_q = net.load.q_mvar.to_numpy() * rng.uniform(0.0, 1.5, (n_steps, len(net.load)))
    sgen_p = net.sgen.p_mw.to_numpy() * rng.uniform(0.0, 1.0, (n_steps, len(net.sgen)))
    sgen_q = net.sgen.q_mvar.to_numpy() * rng.uniform(-1.0, 1.0, (n_steps, len(net.sgen)))
    return load_p, load_q, sgen_p, sgen_q


def assert_matches_runpp(net, ds, load_p, load_q, sgen_p, sgen_q, steps, **runpp_options):
    for t in steps:
        step = copy.deepcopy(net)
        step.load["p_mw"], step.load["q_mvar"] = load_p[t], load_q[t]
        step.sgen["p_mw"], step.sgen["q_mvar"] = sgen_p[t], sgen_q[t]
        pp.runpp(step, tolerance_mva=REFERENCE_TOLERANCE_MVA, max_iteration=50, **runpp_options)
        result = ds.isel(time=t)
        assert bool(result.converged)
        buses = result.bus.values
        np.testing.assert_allclose(result.vm_pu, step.res_bus.vm_pu.loc[buses], rtol=0, atol=VM_ATOL_PU)
        np.testing.assert_allclose(result.va_degree, step.res_bus.va_degree.loc[buses], rtol=0,
                                   atol=VA_ATOL_DEGREE)
        np.testing.assert_allclose(result.line_loading_pct, step.res_line.loading_percent.fillna(0.0),
                                   rtol=0, atol=LOADING_ATOL_PCT)
        np.testing.assert_allclose(result.line_i_ka, step.res_line.i_ka.fillna(0.0), rtol=0,
                                   atol=CURRENT_ATOL_KA)
        np.testing.assert_allclose(result.trafo_loading_pct, step.res_trafo.loading_percent.fillna(0.0),
                                   rtol=0, atol=LOADING_ATOL_PCT)
        np.testing.assert_allclose(result.trafo_i_lv_ka, step.res_trafo.i_lv_ka.fillna(0.0), rtol=0,
                                   atol=CURRENT_ATOL_KA)
        assert float(result.p_slack_mw) == pytest.approx(step.res_ext_grid.p_mw.sum(), abs=POWER_ATOL_MW)
        assert float(result.q_slack_mvar) == pytest.approx(step.res_ext_grid.q_mvar.sum(), abs=POWER_ATOL_MW)
        branch_losses = sum(step[f"res_{t}"].pl_mw.sum() for t in ("line", "trafo", "trafo3w", "impedance")
                            if f"res_{t}" in step and len(step[f"res_{t}"]))
        assert float(result.losses_mw) == pytest.approx(branch_losses, abs=POWER_ATOL_MW)


@pytest.mark.parametrize("source", BUNDLED_GRIDS)
def test_bundled_grids_match_runpp(grid_factory, source):
    net, grid = grid_factory(source)
    injections = random_injections(net, 24, seed=7)
    ds = run_timeseries(grid, *injections)
    assert ds.attrs["steps_not_converged"] == 0
    assert (ds.solver == SOLVER_CODES["fixed_point"]).all()
    assert_matches_runpp(net, ds, *injections, steps=[0, 5, 11, 23])


def test_dataset_contract(grid_factory):
    net, grid = grid_factory("pandapower:cigre_lv")
    ds = run_timeseries(grid, *random_injections(net, 3, seed=1)[:3])
    assert ds.vm_pu.dims == ("time", "bus") and ds.vm_pu.attrs["units"] == "p.u."
    assert ds.line_loading_pct.dims == ("time", "line") and ds.line_loading_pct.attrs["units"] == "%"
    assert ds.trafo_loading_pct.dims == ("time", "trafo")
    assert ds.converged.dtype == bool and ds.iterations.dtype == np.int32
    assert list(ds.time.values) == [0, 1, 2]
    assert list(ds.line.values) == list(net.line.index)
    assert list(ds.trafo.values) == list(net.trafo.index)
    assert set(ds.bus.values) == set(net.bus.index)
    assert ds.attrs["unenergized_buses"] == []
    for name, var in ds.data_vars.items():
        assert "units" in var.attrs, name


def test_results_do_not_depend_on_block_chunk_or_float_width(grid_factory):
    net, grid = grid_factory("simbench:1-LV-rural1--0-sw")
    injections = random_injections(net, 37, seed=3)
    reference = run_timeseries(grid, *injections)
    for block, chunk in ((1, 1000), (7, 10), (64, 37)):
        other = run_timeseries(grid, *injections, block=block, chunk_steps=chunk)
        for name in reference.data_vars:
            np.testing.assert_array_equal(other[name].values, reference[name].values, err_msg=name)
    single = run_timeseries(grid, *(a[[20]] for a in injections))
    np.testing.assert_array_equal(single.vm_pu.values[0], reference.vm_pu.values[20])
    narrow = run_timeseries(grid, *injections, dtype=np.float32)
    assert narrow.vm_pu.dtype == np.float32
    np.testing.assert_allclose(narrow.vm_pu, reference.vm_pu, rtol=1e-6)


@pytest.mark.parametrize("source", ["pandapower:cigre_lv", "simbench:1-MV-rural--0-sw"])
def test_fixed_point_kernel_matches_twin(grid_factory, source):
    net, grid = grid_factory(source)
    injections = random_injections(net, 5, seed=11)
    result = solve(grid, *injections, fallback=False)
    for t in range(5):
        s_const, s_i, s_z = step_injections(grid, *(a[t] for a in injections))
        v, iterations, converged = twin.fixed_point_step(
            grid.ybus, grid.ref, grid.v_ref, s_const, s_i, s_z, VOLTAGE_TOLERANCE_PU, 100)
        assert converged and result.converged[t]
        assert abs(int(result.iterations[t]) - iterations) <= 1
        np.testing.assert_allclose(result.v[t], v, rtol=0, atol=KERNEL_TWIN_ATOL_PU)
        # The contraction-based early stop must still land within the tolerance of the fixed
        # point itself (iterated to round-off here).
        exact, _, _ = twin.fixed_point_step(
            grid.ybus, grid.ref, grid.v_ref, s_const, s_i, s_z, 1e-14, 100)
        np.testing.assert_allclose(result.v[t], exact, rtol=0, atol=VOLTAGE_TOLERANCE_PU)


@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
def test_finite_check_kernel_matches_twin(bad):
    values = np.random.default_rng(3).normal(size=(257, 13)) * 1e300
    if bad is not None:
        values[200, 12] = bad
    assert pf_kernels.all_finite(values) == twin.all_finite(values) == (bad is None)


def test_angle_kernel_matches_twin_on_the_whole_circle():
    rng = np.random.default_rng(11)
    angle = rng.uniform(-np.pi, np.pi, 20_000)
    magnitude = 10.0 ** rng.uniform(-3.0, 3.0, angle.size)
    edges = [(0.0, 0.0), (-0.0, 0.0), (-0.0, -0.0), (0.0, -0.0), (1.0, 0.0), (-1.0, 0.0),
             (-1.0, -0.0), (0.0, 1.0), (0.0, -1.0), (1.0, 1.0), (-1.0, -1.0), (1e-300, 1e-300),
             (np.sqrt(2.0) - 1.0, -1.0)]
    re = np.concatenate([magnitude * np.cos(angle), [e[0] for e in edges]])
    im = np.concatenate([magnitude * np.sin(angle), [e[1] for e in edges]])
    got = np.array([pf_kernels.angle_degree(x, y) for x, y in zip(re, im, strict=True)])
    want = twin.angle_degree(re, im)
    np.testing.assert_allclose(got, want, rtol=0.0, atol=ANGLE_TWIN_ATOL_DEGREE)
    assert np.array_equal(np.signbit(got), np.signbit(want))


def test_output_kernel_matches_twin(grid_factory):
    net, grid = grid_factory("pandapower:cigre_lv")
    v = solve(grid, *random_injections(net, 4, seed=5)).v
    n_bus, n_line, n_trafo = len(grid.bus_index), len(grid.line_index), len(grid.trafo_index)
    got = {"vm": np.empty((4, n_bus)), "va": np.empty((4, n_bus)),
           "line_pct": np.empty((4, n_line)), "line_ka": np.empty((4, n_line)),
           "trafo_pct": np.empty((4, n_trafo)), "trafo_hv_ka": np.empty((4, n_trafo)),
           "trafo_lv_ka": np.empty((4, n_trafo)), "s_ref": np.empty(4, dtype=complex),
           "loss": np.empty(4)}
    ref_rows = grid.ybus[grid.ref]
    pf_kernels.step_outputs(
        np.ascontiguousarray(v.real), np.ascontiguousarray(v.imag), grid.bus_internal,
        grid.br_from, grid.br_to, grid.y_ff, grid.y_ft, grid.y_tf, grid.y_tt,
        *grid.line_ends, *grid.trafo_ends, grid.ref, ref_rows.indptr.astype(np.int64),
        ref_rows.indices.astype(np.int64), ref_rows.data.astype(complex), *got.values())
    expected = twin.step_outputs(v, grid.bus_internal, grid.br_from, grid.br_to, grid.y_ff, grid.y_ft,
                                 grid.y_tf, grid.y_tt, grid.line_ends, grid.trafo_ends, n_line,
                                 n_trafo, grid.ybus, grid.ref)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=BRANCH_TWIN_RTOL, atol=1e-14, err_msg=name)


def test_non_converged_steps_are_retried_and_counted(grid_factory):
    net, grid = grid_factory("pandapower:cigre_lv")
    injections = random_injections(net, 4, seed=2)
    capped = solve(grid, *injections, max_iter=2, fallback=False)
    assert not capped.converged.any() and (capped.iterations == 2).all()
    retried = solve(grid, *injections, max_iter=2)
    assert retried.converged.all() and (retried.solver == SOLVER_CODES["newton"]).all()
    full = solve(grid, *injections)
    np.testing.assert_allclose(retried.v, full.v, rtol=0, atol=1e-9)


def test_overloaded_step_is_flagged_not_dropped(grid_factory):
    net, grid = grid_factory("pandapower:cigre_lv")
    load_p, load_q, sgen_p, sgen_q = random_injections(net, 3, seed=4)
    load_p[1] *= 400.0  # far beyond the voltage-collapse point
    ds = run_timeseries(grid, load_p, load_q, sgen_p, sgen_q)
    assert ds.sizes["time"] == 3
    assert ds.converged.values.tolist() == [True, False, True]
    assert ds.attrs["steps_not_converged"] == 1
    assert ds.attrs["steps_retried_pandapower"] == 1


def _zip_loads():
    net = pn.create_cigre_network_lv()
    net.load["const_z_p_percent"] = 30.0
    net.load["const_i_p_percent"] = 20.0
    net.load["const_z_q_percent"] = 10.0
    net.load["const_i_q_percent"] = 40.0
    return net


def _taps_and_shift():
    net = pn.create_cigre_network_lv()
    net.trafo["tap_changer_type"] = "Ratio"
    net.trafo["tap_side"] = "hv"
    net.trafo["tap_neutral"] = 0
    net.trafo["tap_step_percent"] = 2.5
    net.trafo["tap_min"], net.trafo["tap_max"] = -2, 2
    net.trafo["tap_pos"] = [2, -1, 1]
    return net


def _parallel_lines_and_open_switch():
    net = pn.create_cigre_network_lv()
    net.line.loc[net.line.index[:3], "parallel"] = 2
    net.line.loc[net.line.index[5], "in_service"] = False
    line = net.line.index[20]
    pp.create_switch(net, net.line.at[line, "to_bus"], line, et="l", closed=False)
    return net


def _storage_and_shunt():
    net = pn.create_cigre_network_mv(with_der="all")
    pp.create_shunt(net, 5, q_mvar=0.3, p_mw=0.01)
    return net


@pytest.mark.parametrize(
    "build",
    [_zip_loads, _taps_and_shift, _parallel_lines_and_open_switch, _storage_and_shunt,
     pn.example_multivoltage],
    ids=["zip-loads", "taps-and-shift", "parallel-open-switch", "storage-shunt", "gen-xward-trafo3w"],
)
def test_element_coverage_matches_runpp(build):
    net = build()
    grid = prepare_grid(net)
    injections = random_injections(net, 4, seed=9)
    ds = run_timeseries(grid, *injections)
    assert ds.attrs["steps_not_converged"] == 0
    assert_matches_runpp(net, ds, *injections, steps=range(4))


def test_gen_grid_uses_newton(grid_factory):
    net = pn.example_multivoltage()
    grid = prepare_grid(net)
    assert grid.needs_newton
    ds = run_timeseries(grid, *random_injections(net, 2, seed=1))
    assert (ds.solver == SOLVER_CODES["newton"]).all()


def test_bad_inputs_are_input_errors(grid_factory):
    net, grid = grid_factory("pandapower:cigre_lv")
    load_p, load_q, sgen_p, _ = random_injections(net, 2, seed=0)
    with pytest.raises(InputError, match=r"load_p_mw must have shape \[time, 15\]"):
        run_timeseries(grid, load_p[:, :3], load_q, sgen_p)
    with pytest.raises(InputError, match="load_q_mvar has 1 steps, expected 2"):
        run_timeseries(grid, load_p, load_q[:1], sgen_p)
    bad = load_p.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="load_p_mw contains NaN"):
        run_timeseries(grid, bad, load_q, sgen_p)


@pytest.mark.parametrize("array, value", [(1, np.nan), (2, np.inf), (3, -np.inf)])
def test_non_finite_input_is_named_wherever_it_sits(grid_factory, array, value):
    """The kernel's own check (a non-finite bus injection) and the re-scan that names the array."""
    net, grid = grid_factory("simbench:1-LV-rural1--0-sw")
    injections = [a.copy() for a in random_injections(net, 300, seed=2)]
    injections[array][211, len(injections[array][0]) // 2] = value
    name = ("load_p_mw", "load_q_mvar", "sgen_p_mw", "sgen_q_mvar")[array]
    with pytest.raises(InputError, match=f"{name} contains NaN or infinite values"):
        solve(grid, *injections)
    with pytest.raises(InputError, match=f"{name} contains NaN or infinite values"):
        run_timeseries(grid, *injections, chunk_steps=100)


def test_kernel_marks_non_finite_steps_and_solves_the_others_alike(grid_factory):
    net, grid = grid_factory("pandapower:cigre_lv")
    injections = random_injections(net, 40, seed=4)
    clean = solve(grid, *injections, fallback=False)
    bad = injections[0].copy()
    bad[[3, 17], 2] = [np.nan, np.inf]
    v = np.zeros_like(clean.v)
    iterations = np.full(40, -1, dtype=np.int32)
    converged = np.ones(40, dtype=bool)
    powerflow._run_fixed_point(grid, bad, *injections[1:], 8, 100, v, iterations, converged)
    assert iterations[3] == iterations[17] == 0 and not converged[[3, 17]].any()
    others = np.setdiff1d(np.arange(40), [3, 17])
    np.testing.assert_array_equal(iterations[others], clean.iterations[others])
    np.testing.assert_array_equal(v[others], clean.v[others])


def _lu_only(grid):
    """The same grid solved by the general LU kernel instead of the radial one."""
    assert grid.forest is not None
    return dataclasses.replace(grid, forest=None)


@pytest.mark.parametrize("source, max_iter", [
    ("pandapower:cigre_lv", 100), ("pandapower:cigre_lv", 8),
    ("simbench:1-MV-rural--0-sw", 100), ("simbench:1-MV-rural--0-sw", 6),
])
def test_radial_kernel_is_the_lu_kernel_bit_for_bit(grid_factory, source, max_iter):
    """Steps not a multiple of the lane count, two non-finite steps, and (at an iteration limit
    near the grid's usual count) steps that stop unconverged next to converged ones: same
    voltages, counts and flags, for any task size."""
    net, grid = grid_factory(source)
    injections = list(random_injections(net, 2 * LANES + 5, seed=12))
    injections[1] = injections[1].copy()
    injections[1][[2, LANES + 1], 0] = [np.nan, -np.inf]

    def run(model, block):
        v = np.zeros((2 * LANES + 5, grid.n_internal), dtype=complex)
        iterations = np.full(2 * LANES + 5, -1, dtype=np.int32)
        converged = np.zeros(2 * LANES + 5, dtype=bool)
        powerflow._run_fixed_point(model, *injections, block, max_iter, v, iterations, converged)
        return v, iterations, converged

    lu = run(_lu_only(grid), None)
    assert (lu[1][[2, LANES + 1]] == 0).all() and (lu[1] > 0).sum() == 2 * LANES + 3
    n_converged = int(lu[2].sum())
    assert n_converged == 2 * LANES + 3 if max_iter == 100 else 0 < n_converged < 2 * LANES + 3
    for block in (None, 1, 5 * LANES):
        for got, want in zip(run(grid, block), lu, strict=True):
            np.testing.assert_array_equal(got, want)


def test_meshed_grid_takes_the_lu_kernel_and_matches_runpp():
    net = pn.create_cigre_network_mv()
    net.switch["closed"] = True  # closes the feeder loops
    grid = prepare_grid(net)
    assert grid.forest is None
    injections = random_injections(net, 3, seed=2)
    ds = run_timeseries(grid, *injections)
    assert (ds.solver == SOLVER_CODES["fixed_point"]).all()
    assert_matches_runpp(net, ds, *injections, steps=range(3))


def test_vector_rows_match_twin():
    """Every lane of the explicit vector rows, including a NaN already in the change."""
    rng = np.random.default_rng(5)
    arrays = [rng.normal(size=(4, LANES)) for _ in range(6)]
    change = rng.uniform(0.0, 1e-3, LANES)
    change[[0, 7]] = [np.nan, 0.0]
    scalars = rng.normal(size=6)
    got = [a.copy() for a in arrays] + [change.copy()]
    want = [a.copy() for a in arrays] + [change.copy()]
    _vector_rows(*got, scalars)
    twin.forest_forward_row(want[0], want[1], 0, 2, scalars[0], scalars[1])
    twin.forest_backward_row(*want, 1, 3, *scalars)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("offset", [0, 1], ids=["aligned", "unaligned"])
def test_written_row_is_the_row(offset):
    """Non-temporal stores where the row is 16-byte aligned, plain ones where not: the same row."""
    buffer = np.zeros(2 * 3 * 7 + 1)
    out = buffer[offset:offset + 2 * 3 * 7].view(complex).reshape(3, 7)
    assert (out.ctypes.data % 16 == 0) == (offset == 0)
    row = np.arange(14.0) - 3.5
    _write(out, 1, row)
    np.testing.assert_array_equal(out[1], row[0::2] + 1j * row[1::2])
    assert not out[[0, 2]].any()


@numba.njit
def _write(out, t, row):
    pf_simd.write_row(out, t, row)
    pf_simd.fence()


@numba.njit
def _vector_rows(x_re, x_im, v_re, v_im, s_re, s_im, change, c):
    pf_simd.forward_row(x_re, x_im, 0, 2, c[0], c[1])
    pf_simd.backward_row(x_re, x_im, v_re, v_im, s_re, s_im, change, 1, 3, c[0], c[1], c[2], c[3],
                         c[4], c[5])


@pytest.mark.parametrize("radial", [True, False], ids=["radial-kernel", "lu-kernel"])
def test_a_step_whose_voltages_turn_nan_is_not_converged(grid_factory, radial):
    """A zero start voltage makes the injection current NaN (0·∞); NaN must not pass as no change."""
    net, grid = grid_factory("pandapower:cigre_lv")
    grid = grid if radial else _lu_only(grid)
    load_p, load_q, sgen_p, sgen_q = random_injections(net, 3, seed=7)
    v = np.zeros((3, grid.n_internal), dtype=complex)
    iterations = np.zeros(3, dtype=np.int32)
    converged = np.ones(3, dtype=bool)
    start = grid.v0.copy()
    start[0] = 0.0
    broken = dataclasses.replace(grid, v0=start)
    powerflow._run_fixed_point(broken, load_p, load_q, sgen_p, sgen_q, None, 20, v, iterations,
                               converged)
    assert not converged.any() and (iterations == 20).all()


def test_non_finite_value_of_an_element_the_kernel_skips_is_still_rejected():
    """Out of service (load 4) and at the slack bus (an added load): not read by the kernel."""
    net = pn.create_cigre_network_lv()
    net.load.loc[net.load.index[4], "in_service"] = False
    pp.create_load(net, net.ext_grid.bus.iloc[0], p_mw=0.01, q_mvar=0.0)
    grid = prepare_grid(net)
    slack_load = len(net.load) - 1
    assert grid.load_internal[4] < 0 and grid.load_internal[slack_load] in grid.ref
    for column in (4, slack_load):
        load_p, load_q, sgen_p, sgen_q = random_injections(net, 3, seed=5)
        load_q[1, column] = np.nan
        with pytest.raises(InputError, match="load_q_mvar contains NaN or infinite values"):
            solve(grid, load_p, load_q, sgen_p, sgen_q)


def test_finite_inputs_whose_bus_sum_overflows_are_named(grid_factory):
    net, grid = grid_factory("simbench:1-LV-rural1--0-sw")
    load_p, load_q, sgen_p, sgen_q = random_injections(net, 3, seed=6)
    bus = np.intersect1d(grid.load_internal, grid.sgen_internal)[0]
    load = np.flatnonzero(grid.load_internal == bus)[0]
    sgen = np.flatnonzero(grid.sgen_internal == bus)[0]
    load_p[2, load], sgen_p[2, sgen] = 1.7e308, -1.7e308  # finite; their bus sum is not
    with pytest.raises(InputError, match="bus injections of step 2 overflow"):
        solve(grid, load_p, load_q, sgen_p, sgen_q)


def test_unsupported_element_is_named():
    net = pn.create_cigre_network_lv()
    pp.create_dcline(net, 1, 2, p_mw=0.01, loss_percent=1.0, loss_mw=0.0, vm_from_pu=1.0, vm_to_pu=1.0)
    with pytest.raises(InputError, match="element table 'dcline' is not supported"):
        prepare_grid(net)


def _simbench_codes():
    import simbench as sb

    codes = []
    for code in sb.collect_all_simbench_codes():
        parts = code.split("-")
        if parts[1] in ("LV", "MV", "MVLV") and parts[-2] == "0" and code.endswith("-sw"):
            codes.append(code)
    return codes


SIMBENCH_CI_SUBSET = ("1-LV-rural1--0-sw",)


def _profile_steps(net, n_steps, seed):
    import simbench as sb

    values = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    rows = np.sort(np.random.default_rng(seed).choice(len(values[("load", "p_mw")]), n_steps, replace=False))
    load_p = values[("load", "p_mw")].to_numpy()[rows]
    load_q = values[("load", "q_mvar")].to_numpy()[rows]
    sgen_p = values[("sgen", "p_mw")].to_numpy()[rows]
    return load_p, load_q, sgen_p, np.zeros_like(sgen_p)


def _check_simbench(network_factory, code, n_steps, checked):
    net = network_factory(f"simbench:{code}")
    injections = _profile_steps(net, n_steps, seed=zlib.crc32(code.encode()))
    ds = run_timeseries(net, *injections)
    assert ds.attrs["steps_not_converged"] == 0
    assert_matches_runpp(net, ds, *injections, steps=checked)


@pytest.mark.parametrize("code", SIMBENCH_CI_SUBSET)
def test_simbench_profiles_match_runpp_subset(network_factory, code):
    _check_simbench(network_factory, code, 96, checked=[0, 47, 95])


@pytest.mark.slow
@pytest.mark.parametrize("code", _simbench_codes())
def test_every_simbench_lv_mv_grid_matches_runpp(network_factory, code):
    """96 profile steps per grid; every step checked against runpp at tight tolerance."""
    _check_simbench(network_factory, code, 96, checked=range(96))
