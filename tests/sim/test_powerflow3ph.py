"""Unbalanced batched power flow against pandapower ``runpp_3ph`` (tight), and the kernel vs its twin."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from pandapower.pf.runpp_3ph import runpp_3ph

from scenarios.errors import InputError
from sim.powerflow3ph import (
    VOLTAGE_TOLERANCE_PU,
    net_injections,
    phase_injections,
    prepare_grid_3ph,
    run_timeseries_3ph,
    sequence_voltages,
    solve_3ph,
)
from tests.reference import powerflow3ph as twin

VM_ATOL_PU = 1e-6            # per-phase |Δvm| vs pandapower runpp_3ph (the figure)
VA_ATOL_DEGREE = 1e-4
VUF_ATOL_PCT = 1e-5          # |ΔVUF| in percentage points
CURRENT_ATOL_KA = 1e-7
POWER_ATOL_MW = 1e-6         # ext_grid P and Q (three phases)
KERNEL_TWIN_ATOL_PU = 1e-9   # reduced, reordered kernel vs full-network twin: both within 1e-10
# Output kernel vs NumPy twin: branch currents are differences of nearly equal terms (large series
# admittances), so the two summation orders differ by ~1e-12 kA; voltages agree to ~1e-15.
OUTPUT_TWIN_RTOL = 1e-9
OUTPUT_TWIN_ATOL = {"%": 1e-8, "kA": 1e-10, "p.u.": 1e-10, "degree": 1e-10}  # per output unit
IEEE_CASES = ("on_peak_566", "off_peak_1", "off_peak_1440")
PHASE_COLUMNS = {"p": ["p_a_mw", "p_b_mw", "p_c_mw"], "q": ["q_a_mvar", "q_b_mvar", "q_c_mvar"]}


def runpp_3ph_tight(net):
    """pandapower ``runpp_3ph`` to its fixed point: its outer loop stops at a fixed 3e-8 p.u.
    power mismatch, so it is restarted from its own results until no phase voltage moves by
    1e-12 p.u."""
    runpp_3ph(net, tolerance_mva=1e-11)
    for _ in range(30):
        old = net.res_bus_3ph[["vm_a_pu", "vm_b_pu", "vm_c_pu"]].to_numpy().copy()
        runpp_3ph(net, tolerance_mva=1e-11, init="results")
        new = net.res_bus_3ph[["vm_a_pu", "vm_b_pu", "vm_c_pu"]].to_numpy()
        if np.nanmax(np.abs(new - old)) < 1e-12:
            return net
    raise AssertionError("runpp_3ph did not settle")


def assert_matches_runpp_3ph(net, result):
    """Per-phase voltages, VUF, line currents and loadings of one result step vs runpp_3ph."""
    ref = runpp_3ph_tight(copy.deepcopy(net))
    res_bus = ref.res_bus_3ph.loc[result.bus.values]
    for ph in "abc":
        np.testing.assert_allclose(result[f"vm_{ph}_pu"], res_bus[f"vm_{ph}_pu"], rtol=0,
                                   atol=VM_ATOL_PU)
        np.testing.assert_allclose(result[f"va_{ph}_degree"], res_bus[f"va_{ph}_degree"], rtol=0,
                                   atol=VA_ATOL_DEGREE)
        np.testing.assert_allclose(result[f"line_i_{ph}_ka"], ref.res_line_3ph[f"i_{ph}_ka"],
                                   rtol=0, atol=CURRENT_ATOL_KA)
    np.testing.assert_allclose(result.vuf_pct, res_bus.unbalance_percent, rtol=0, atol=VUF_ATOL_PCT)
    phases = res_bus[["vm_a_pu", "vm_b_pu", "vm_c_pu"]].to_numpy()
    worst = phases[np.arange(len(phases)), np.argmax(np.abs(phases - 1.0), axis=1)]
    np.testing.assert_allclose(result.vm_pu, worst, rtol=0, atol=VM_ATOL_PU)
    slack = ref.res_ext_grid_3ph
    np.testing.assert_allclose(float(result.p_slack_mw), slack[["p_a_mw", "p_b_mw", "p_c_mw"]]
                               .to_numpy().sum(), rtol=0, atol=POWER_ATOL_MW)
    np.testing.assert_allclose(float(result.q_slack_mvar), slack[["q_a_mvar", "q_b_mvar",
                                                                  "q_c_mvar"]].to_numpy().sum(),
                               rtol=0, atol=POWER_ATOL_MW)
    np.testing.assert_allclose(result.line_i_n_ka, ref.res_line_3ph.i_n_ka, rtol=0,
                               atol=CURRENT_ATOL_KA)
    np.testing.assert_allclose(result.line_loading_pct, ref.res_line_3ph.loading_percent,
                               rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(result.trafo_loading_pct, ref.res_trafo_3ph.loading_percent,
                               rtol=1e-6, atol=1e-5)
    return ref


@pytest.fixture(scope="session")
def ieee_grids():
    prepared = {}

    def factory(case):
        if case not in prepared:
            net = pn.ieee_european_lv_asymmetric(case)
            prepared[case] = (net, prepare_grid_3ph(net))
        return prepared[case]

    return factory


@pytest.mark.parametrize("case", IEEE_CASES)
def test_ieee_european_lv_matches_runpp_3ph(ieee_grids, case):
    net, grid = ieee_grids(case)
    p, q = net_injections(grid, 2)
    load = net.asymmetric_load
    ds = run_timeseries_3ph(grid, asymmetric_load_p_mw=np.broadcast_to(
        load[PHASE_COLUMNS["p"]].to_numpy(), (2, len(load), 3)),
        asymmetric_load_q_mvar=np.broadcast_to(load[PHASE_COLUMNS["q"]].to_numpy(),
                                               (2, len(load), 3)))
    assert bool(ds.converged.all())
    assert_matches_runpp_3ph(net, ds.isel(time=0))
    # the same columns through net_injections
    result = solve_3ph(grid, p, q)
    np.testing.assert_array_equal(sequence_voltages(grid, result.v_kept)[0],
                                  sequence_voltages(grid, solve_3ph(grid, p[:1], q[:1]).v_kept)[0])


def customer_feeder(level: str, seed: int = 7):
    """The IEEE European LV feeder with single-phase homes (on their phase), home PV on one
    phase, a three-phase wye shop, a delta-connected three-phase motor load and, at ``ev``,
    7.4 kW single-phase EV chargers on 40 % of the homes (evening peak)."""
    net = pn.ieee_european_lv_asymmetric("off_peak_1")
    rng = np.random.default_rng(seed)
    homes = net.asymmetric_load
    on = homes[PHASE_COLUMNS["p"]].to_numpy() > 0
    home_kw = {"night": 0.3, "day": 1.2, "evening": 2.5, "ev": 2.5}[level]
    p = on * rng.uniform(0.5, 1.5, on.shape) * home_kw / 1000.0
    if level == "ev":
        p = p + on * (rng.uniform(size=(len(homes), 1)) < 0.4) * 7.4e-3
    if not on.any(axis=1).all():  # homes without a phase in the snapshot: phase a
        p[~on.any(axis=1), 0] = home_kw / 1000.0
    for k, ph in enumerate("abc"):
        net.asymmetric_load[f"p_{ph}_mw"] = p[:, k]
        net.asymmetric_load[f"q_{ph}_mvar"] = 0.2 * p[:, k]
    buses = homes.bus.to_numpy()
    pp.create_load(net, buses[3], p_mw=0.012, q_mvar=0.003, type="wye", name="shop")
    pp.create_asymmetric_load(net, buses[10], p_a_mw=0.004, p_b_mw=0.004, p_c_mw=0.004,
                              q_a_mvar=0.002, q_b_mvar=0.002, q_c_mvar=0.002, type="delta",
                              name="motor")
    pv_kw = {"night": 0.0, "day": 4.0, "evening": 0.5, "ev": 0.0}[level]
    for bus, ph in zip(buses[::6], "abcabcabcabc", strict=False):
        values = {f"p_{x}_mw": (pv_kw / 1000.0 if x == ph else 0.0) for x in "abc"}
        pp.create_asymmetric_sgen(net, bus, **values, q_a_mvar=0.0, q_b_mvar=0.0, q_c_mvar=0.0)
    pp.create_sgen(net, buses[20], p_mw=3 * pv_kw / 1000.0, q_mvar=0.0, type="wye")
    return net


@pytest.mark.parametrize("level", ["night", "day", "evening", "ev"])
def test_customer_feeder_matches_runpp_3ph(level):
    net = customer_feeder(level)
    grid = prepare_grid_3ph(net)
    p, q = net_injections(grid, 1)
    result = solve_3ph(grid, p, q)
    assert bool(result.converged.all())
    ds = run_timeseries_3ph(grid, **_own_series(net))
    ref = assert_matches_runpp_3ph(net, ds.isel(time=0))
    if level == "ev":  # the heavy EV evening load is a real stress: one phase well below nominal
        worst = ref.res_bus_3ph[["vm_a_pu", "vm_b_pu", "vm_c_pu"]].min()
        assert worst.min() < 0.99 and worst.max() - worst.min() > 0.005


def _own_series(net):
    series = {}
    for table in ("load", "sgen"):
        series[f"{table}_p_mw"] = net[table].p_mw.to_numpy()[None]
        series[f"{table}_q_mvar"] = net[table].q_mvar.to_numpy()[None]
    for table in ("asymmetric_load", "asymmetric_sgen"):
        series[f"{table}_p_mw"] = net[table][PHASE_COLUMNS["p"]].to_numpy()[None]
        series[f"{table}_q_mvar"] = net[table][PHASE_COLUMNS["q"]].to_numpy()[None]
    return series


@pytest.mark.slow
def test_time_series_steps_match_runpp_3ph():
    """Several steps of one series (different levels per step) each match their own runpp_3ph."""
    levels = ["night", "ev", "day"]
    nets = [customer_feeder(level) for level in levels]
    grid = prepare_grid_3ph(nets[0])
    series = {name: np.concatenate([_own_series(net)[name] for net in nets])
              for name in _own_series(nets[0])}
    ds = run_timeseries_3ph(grid, chunk_steps=2, **series)
    for t, net in enumerate(nets):
        assert_matches_runpp_3ph(net, ds.isel(time=t))


def test_kernel_matches_twin_and_is_block_invariant():
    net = customer_feeder("ev")
    grid = prepare_grid_3ph(net)
    rng = np.random.default_rng(3)
    p0, q0 = net_injections(grid, 5)
    scale = rng.uniform(0.0, 1.4, p0.shape)
    p, q = p0 * scale, q0 * scale
    result = solve_3ph(grid, p, q, block=4)
    again = solve_3ph(grid, p, q, block=16)
    np.testing.assert_array_equal(result.v_kept, again.v_kept)
    np.testing.assert_array_equal(result.iterations, again.iterations)
    v = sequence_voltages(grid, result.v_kept)
    k = grid.kernel
    col_bus = grid.col_bus
    for t in range(p.shape[0]):
        s_wye, s_delta = twin.bus_powers(p[t], q[t], col_bus, k["col_phase"], k["col_delta"],
                                         grid.col_factor, grid.n_internal)
        v_ref, _, ok = twin.sequence_fixed_point_step(grid.ybus, grid.ref, grid.v_ref, s_wye,
                                                      s_delta, VOLTAGE_TOLERANCE_PU, 100)
        assert ok and result.converged[t]
        np.testing.assert_allclose(v[t], v_ref, rtol=0, atol=KERNEL_TWIN_ATOL_PU)


def test_missing_zero_sequence_data_names_element_and_field(ieee_grids):
    original, _ = ieee_grids("off_peak_1")
    net = copy.deepcopy(original)
    net.line.loc[net.line.index[5], "r0_ohm_per_km"] = np.nan
    with pytest.raises(InputError, match=rf"line {net.line.index[5]} has no 'r0_ohm_per_km'"):
        prepare_grid_3ph(net)
    net = copy.deepcopy(original)
    net.trafo = net.trafo.drop(columns="vk0_percent")
    with pytest.raises(InputError, match=r"trafo 0 has no 'vk0_percent'"):
        prepare_grid_3ph(net)
    net = copy.deepcopy(original)
    net.ext_grid.loc[0, "x0x_max"] = np.nan
    with pytest.raises(InputError, match=r"ext_grid 0 has no 'x0x_max'"):
        prepare_grid_3ph(net)


def test_bad_inputs_are_input_errors(ieee_grids):
    net, grid = ieee_grids("off_peak_1")
    n = len(net.asymmetric_load)
    with pytest.raises(InputError, match="asymmetric_load_p_mw"):
        phase_injections(grid, asymmetric_load_p_mw=np.zeros((2, n)))
    bad = np.zeros((2, n, 3))
    bad[1, 4, 2] = np.nan
    with pytest.raises(InputError, match="step 1"):
        phase_injections(grid, asymmetric_load_p_mw=bad)


def test_elements_without_a_connection_type_are_wye():
    """SimBench loads have no 'type' and its sgens name their technology there: wye, as
    pandapower's default connection, instead of runpp_3ph silently skipping them."""
    net = customer_feeder("day")
    net.load["type"] = None
    net.sgen["type"] = "PV"
    grid = prepare_grid_3ph(net)
    ds = run_timeseries_3ph(grid, **_own_series(net))
    net.load["type"] = "wye"
    net.sgen["type"] = "wye"
    assert_matches_runpp_3ph(net, ds.isel(time=0))


def test_output_kernel_matches_twin():
    net = customer_feeder("ev")
    grid = prepare_grid_3ph(net)
    scale = np.linspace(0.2, 1.4, 4)[:, None]
    series = {name: values * (scale if values.ndim == 2 else scale[:, :, None])
              for name, values in _own_series(net).items()}
    ds = run_timeseries_3ph(grid, **series)
    result = solve_3ph(grid, *phase_injections(grid, **series))
    o = grid.outputs
    expected = twin.phase_outputs(
        sequence_voltages(grid, result.v_kept), grid.bus_internal, grid.branch_from,
        grid.branch_to, grid.yf, grid.yt, o["line_branch"], o["line_col"], o["line_ka"],
        o["line_pct"], o["trafo_branch"], o["trafo_col"], o["trafo_pct"], len(net.line),
        len(net.trafo))
    for name, values in expected.items():
        np.testing.assert_allclose(ds[name].values, values, rtol=OUTPUT_TWIN_RTOL,
                                   atol=OUTPUT_TWIN_ATOL[ds[name].attrs["units"]], err_msg=name)


def test_ieee_european_lv_builtin_has_load_elements_and_solves_both_ways(tmp_path):
    """``pandapower:ieee_european_lv``: the homes as wye ``load`` elements (customers attach to
    them); the balanced and the unbalanced model both build, and at the snapshot's power split
    evenly over the phases the unbalanced flow equals the balanced one."""
    from sim.network import load_network
    from sim.powerflow import prepare_grid
    from sim.powerflow import run_timeseries as run_balanced

    net = load_network("pandapower:ieee_european_lv", cache_dir=tmp_path)
    snapshot = pn.ieee_european_lv_asymmetric("on_peak_566").asymmetric_load
    assert len(net.load) == len(snapshot) == 55 and len(net.asymmetric_load) == 0
    np.testing.assert_allclose(net.load.p_mw, snapshot[PHASE_COLUMNS["p"]].sum(axis=1))
    grid = prepare_grid_3ph(net)
    p, q = net.load.p_mw.to_numpy()[None], net.load.q_mvar.to_numpy()[None]
    ds = run_timeseries_3ph(grid, load_p_mw=p, load_q_mvar=q)
    balanced = run_balanced(prepare_grid(net), p, q)
    assert float(ds.vuf_pct.max()) < 1e-9
    np.testing.assert_allclose(ds.vm_a_pu.values, balanced.vm_pu.values, rtol=0, atol=VM_ATOL_PU)


def test_meshed_feeder_matches_runpp_3ph():
    """Three ties close loops between far ends of the feeder (meshed)."""
    net = customer_feeder("ev")
    buses = net.asymmetric_load.bus.to_numpy()
    template = net.line.iloc[-1]
    for a, b in ((buses[2], buses[40]), (buses[15], buses[50]), (buses[5], buses[30])):
        pp.create_line_from_parameters(
            net, a, b, length_km=0.05, r_ohm_per_km=template.r_ohm_per_km,
            x_ohm_per_km=template.x_ohm_per_km, c_nf_per_km=template.c_nf_per_km,
            max_i_ka=template.max_i_ka, r0_ohm_per_km=template.r0_ohm_per_km,
            x0_ohm_per_km=template.x0_ohm_per_km, c0_nf_per_km=template.c0_nf_per_km)
    grid = prepare_grid_3ph(net)
    ds = run_timeseries_3ph(grid, **_own_series(net))
    assert bool(ds.converged.all())
    assert_matches_runpp_3ph(net, ds.isel(time=0))
