"""Time-series AC power flow: gridflex next to pandapower, lightsim2grid and power-grid-model.

Every engine is fed the same injections: each grid's own SimBench profiles (load P/Q and sgen P
of the first ``steps`` quarter hours of the SimBench year), from the power-flow engineer's
`benchmarks.bench_powerflow.profile_injections`. Two gridflex rows per grid:

- ``gridflex``: `sim.powerflow.solve` on a prepared `GridModel` (`bench_powerflow.solve_case`):
  bus voltages of every step, the same output the peers produce — the compared figure;
- ``gridflex run_timeseries``: the public `run_timeseries` (branch currents, loadings, losses
  and the labelled, validated Dataset on top) — gated too, so output costs cannot creep in.

Each peer is timed on its solve only, as its adapter in `benchmarks/peers_powerflow.py` reports
it (model conversion is set-up for every engine). pandapower's ``run_timeseries`` costs ~20
ms/step, so it runs ``peer_steps`` steps and is scaled (marked in the report). A peer must agree
with gridflex's voltages to `PEER_AGREEMENT_PU` on the same steps to be compared at all.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from benchmarks import peers_powerflow as peers
from benchmarks.bench_powerflow import profile_injections, solve_case

#: Voltage agreement a peer must reach to be compared at all [p.u.] (PEERS.md: pgm's trafo
#: model differs by up to 7e-7, pandapower at its default tolerance by ~1e-8).
PEER_AGREEMENT_PU = 1e-5
#: Timed rounds of a peer (each call converts the model first: not timed, but it costs).
PEER_ROUNDS = {"pandapower run_timeseries": 2, "pandapower run_timeseries (own Newton)": 2,
               "lightsim2grid": 3, "power-grid-model": 3}


@pytest.fixture(scope="module")
def prepared(size: str, network_factory):
    """``case → (net, GridModel, injections, vm_pu [steps, bus])`` for this size."""
    from sim.powerflow import prepare_grid, run_timeseries

    cache: dict[str, tuple] = {}

    def get(case):
        if case.name not in cache:
            p = case.params(size)
            net = network_factory(p["source"])
            grid = prepare_grid(net)
            injections = profile_injections(net, p["steps"])
            reference = run_timeseries(grid, *injections)
            vm = reference["vm_pu"].reindex(bus=net.bus.index).to_numpy()
            cache[case.name] = (net, grid, injections, vm)
        return cache[case.name]

    return get


@pytest.mark.cases("powerflow")
def test_powerflow_gridflex(measure, size, case, prepared):
    _, grid, injections, _ = prepared(case)
    steps = case.params(size)["steps"]
    result = measure(case, "gridflex", lambda: solve_case(grid, injections), units=steps,
                     unit="steps", note="voltages of every step (as the peers)")
    assert bool(result.converged.all())


@pytest.mark.cases("powerflow")
def test_powerflow_gridflex_dataset(measure, size, case, prepared):
    from sim.powerflow import run_timeseries

    _, grid, injections, _ = prepared(case)
    steps = case.params(size)["steps"]
    ds = measure(case, "gridflex run_timeseries", lambda: run_timeseries(grid, *injections),
                 units=steps, unit="steps", note="+ branch flows, loadings, Dataset")
    assert bool(ds["converged"].all())


PEERS = {
    # pandapower's default runs its Newton step in lightsim2grid when that is installed.
    "pandapower run_timeseries": (peers.run_pandapower_timeseries, "pandapower"),
    "pandapower run_timeseries (own Newton)": (
        functools.partial(peers.run_pandapower_timeseries, lightsim2grid=False), "pandapower"),
    "lightsim2grid": (peers.run_lightsim2grid, "lightsim2grid"),
    "power-grid-model": (peers.run_power_grid_model, "power_grid_model_io"),
}


@pytest.mark.peer
@pytest.mark.cases("powerflow")
@pytest.mark.parametrize("peer", list(PEERS))
def test_powerflow_peer(measure, benchmark, size, case, prepared, peer):
    adapter, module = PEERS[peer]
    pytest.importorskip(module, reason=f"{peer} not installed (optional `peers` extra)")
    net, _, (load_p, load_q, sgen_p, _), vm_gridflex = prepared(case)
    p = case.params(size)
    steps = p["peer_steps"] if peer.startswith("pandapower") else p["steps"]
    args = (net, load_p[:steps], load_q[:steps], sgen_p[:steps])
    # One untimed call first: it warms the peer up and proves it computes the same thing (a
    # peer that breaks or disagrees is reported as not measured, never given a ratio).
    try:
        _, vm = adapter(*args)
    except Exception as error:  # noqa: BLE001 - any third-party failure means "not measured"
        pytest.skip(f"{peer} failed on {case.name}: {type(error).__name__}: {error}")
    difference = float(np.nanmax(np.abs(vm - vm_gridflex[:steps])))
    if not difference < PEER_AGREEMENT_PU:
        pytest.skip(f"{peer} disagrees with gridflex on {case.name} by {difference:.2e} p.u. "
                    f"(> {PEER_AGREEMENT_PU:g}); not compared")
    scaled = f"timed on {steps} steps, scaled; " if steps < p["steps"] else ""
    measure(case, peer, lambda: adapter(*args), units=p["steps"], unit="steps",
            scale=p["steps"] / steps, peer=True, self_timed=True, rounds=PEER_ROUNDS[peer],
            warmup_rounds=0, note=f"{scaled}max Δvm vs gridflex {difference:.1e} p.u.")
    benchmark.extra_info["max_dvm_vs_gridflex_pu"] = difference
