"""Peer power-flow engines fed the same injections as gridflex, for the benchmark.

Each adapter takes a pandapower net and ``[T, element]`` load/sgen arrays and returns
``(seconds, vm_pu[T, bus])`` with buses in ``net.bus.index`` order (NaN where a peer has no bus).
Peers are optional (the ``peers`` extra). Pitfalls handled (see the project's PEERS notes):
lightsim2grid ignores switches and applies ``tap_pos`` where pandapower does not; the
power-grid-model converter gives the source a finite short-circuit power and needs vector groups.
"""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np
import pandas as pd


def switch_free(net):
    """Equivalent net without switches: closed bus-bus switches fused, open line ends moved to a
    new auxiliary bus, trafos behind an open switch out of service, pandapower-ignored taps
    neutral. Returns (net, bus_map) with ``bus_map[original bus] = bus in the new net``."""
    import pandapower as pp
    import pandapower.toolbox as tb

    net = copy.deepcopy(net)
    bus_map = pd.Series(net.bus.index, index=net.bus.index)
    switch = net.switch
    for _, row in switch[(switch.et == "l") & ~switch.closed.astype(bool)].iterrows():
        line, bus = int(row.element), int(row.bus)
        aux = pp.create_bus(net, vn_kv=net.bus.at[bus, "vn_kv"], name="open-switch aux")
        side = "from_bus" if net.line.at[line, "from_bus"] == bus else "to_bus"
        net.line.at[line, side] = aux
    for _, row in switch[(switch.et == "t") & ~switch.closed.astype(bool)].iterrows():
        net.trafo.at[int(row.element), "in_service"] = False
    closed_bb = switch[(switch.et == "b") & switch.closed.astype(bool)]
    for _, row in closed_bb.iterrows():
        keep, drop = int(bus_map[int(row.bus)]), int(bus_map[int(row.element)])
        if keep != drop:
            tb.fuse_buses(net, keep, drop)
            bus_map[bus_map == drop] = keep
    net.switch.drop(net.switch.index, inplace=True)
    for table in ("sgen", "load", "gen", "storage"):
        for column in ("min_p_mw", "max_p_mw", "min_q_mvar", "max_q_mvar"):
            if column in net[table] and net[table][column].dtype == object:
                net[table][column] = pd.to_numeric(net[table][column], errors="coerce")
    renumber = tb.create_continuous_bus_index(net)  # lightsim2grid reads buses by position
    bus_map = bus_map.map(renumber)
    if "tap_changer_type" in net.trafo:
        ignored = net.trafo.tap_changer_type.isna()
        net.trafo.loc[ignored, "tap_pos"] = net.trafo.loc[ignored, "tap_neutral"].fillna(0)
    return net, bus_map


def run_pandapower_timeseries(net, load_p, load_q, sgen_p, lightsim2grid="auto"):
    """pandapower ``run_timeseries`` with ConstControl.

    ``lightsim2grid="auto"`` is pandapower's default: its Newton step runs in lightsim2grid
    when that is installed; ``False`` keeps pandapower's own Newton-Raphson.
    """
    import pandapower.control as control
    import pandapower.timeseries as ts
    from pandapower.timeseries.data_sources.frame_data import DFData

    net = copy.deepcopy(net)
    net.sgen["q_mvar"] = 0.0
    n_steps = load_p.shape[0]
    for element, variable, values in (("load", "p_mw", load_p), ("load", "q_mvar", load_q),
                                      ("sgen", "p_mw", sgen_p)):
        table = net[element]
        frame = pd.DataFrame(values, columns=table.index)
        control.ConstControl(net, element=element, variable=variable, element_index=table.index,
                             data_source=DFData(frame), profile_name=table.index)
    writer = ts.OutputWriter(net, time_steps=range(n_steps), output_path=None)
    writer.log_variable("res_bus", "vm_pu")
    start = time.perf_counter()
    ts.run_timeseries(net, time_steps=range(n_steps), verbose=False, tolerance_mva=1e-8,
                       lightsim2grid=lightsim2grid)
    seconds = time.perf_counter() - start
    vm = writer.output["res_bus.vm_pu"].to_numpy()
    return seconds, vm


def run_lightsim2grid(net, load_p, load_q, sgen_p, tol=1e-10, threads=1):
    """lightsim2grid ``TimeSeriesCPP`` (Newton, KLU) on the switch-free equivalent net.

    ``TimeSeriesCPP`` warm-starts each step from the previous one and refuses threads; with
    ``threads > 1`` its independent-step sibling ``InjectionSweepCPP`` runs instead.

    Every step starts from pandapower's solution of the net at its own values: a flat start
    (all ``1+0j``) makes lightsim2grid's Newton diverge ("TooManyIterations", empty result)
    on every SimBench grid, whose MV/LV transformers shift the LV angles by 150 degree.
    Steps that lightsim2grid reports as not converged are NaN.
    """
    import pandapower as pp
    from lightsim2grid.lightsim2grid_cpp import InjectionSweepCPP, TimeSeriesCPP
    from lightsim2grid.network import init_from_pandapower

    flat, bus_map = switch_free(net)
    flat.sgen["q_mvar"] = 0.0
    pp.runpp(flat, tolerance_mva=tol, max_iteration=50)
    v_init = flat.res_bus.vm_pu.to_numpy() * np.exp(1j * np.deg2rad(flat.res_bus.va_degree.to_numpy()))
    v_init = np.nan_to_num(v_init.astype(complex), nan=1.0)  # unsupplied buses: any value
    with warnings.catch_warnings():  # NaN limits and the implicit slack are expected here
        warnings.simplefilter("ignore", UserWarning)
        model = init_from_pandapower(flat)
    series = TimeSeriesCPP(model) if threads == 1 else InjectionSweepCPP(model)
    series.nb_thread = threads
    series.modify_load_p(np.ascontiguousarray(load_p))
    series.modify_load_q(np.ascontiguousarray(load_q))
    series.modify_sgen_p(np.ascontiguousarray(sgen_p))
    start = time.perf_counter()
    series.compute(v_init, 30, tol)
    seconds = time.perf_counter() - start
    v = np.array(series.get_voltages())
    v[~np.asarray(series.converged_mask(), dtype=bool)] = np.nan
    position = pd.Series(np.arange(len(flat.bus)), index=flat.bus.index)
    return seconds, np.abs(v[:, position[bus_map.loc[net.bus.index].to_numpy()].to_numpy()])


def run_power_grid_model(net, load_p, load_q, sgen_p, threads=1):
    """power-grid-model batch (Newton) via power-grid-model-io's pandapower converter."""
    from power_grid_model import (
        CalculationMethod,
        ComponentType,
        DatasetType,
        PowerGridModel,
        initialize_array,
    )
    from power_grid_model_io.converters import PandaPowerConverter

    flat, bus_map = switch_free(net)
    flat.sgen["q_mvar"] = 0.0
    if "vector_group" in flat.trafo:
        flat.trafo["vector_group"] = flat.trafo["vector_group"].fillna("Dyn5")
    converter = PandaPowerConverter()
    tables = {name: flat[name] for name in flat.keys() if isinstance(flat[name], pd.DataFrame)}
    input_data, _ = converter.load_input_data(tables, make_extra_info=False)
    input_data[ComponentType.source]["sk"] = 1e30
    model = PowerGridModel(input_data)
    n_steps = load_p.shape[0]
    load_ids = np.array([converter.get_id("load", i, "const_power") for i in flat.load.index])
    gen_ids = np.array([converter.get_id("sgen", i) for i in flat.sgen.index])
    loads = initialize_array(DatasetType.update, ComponentType.sym_load, (n_steps, len(load_ids)))
    loads["id"] = load_ids
    loads["p_specified"] = load_p * 1e6 * flat.load.scaling.to_numpy()
    loads["q_specified"] = load_q * 1e6 * flat.load.scaling.to_numpy()
    gens = initialize_array(DatasetType.update, ComponentType.sym_gen, (n_steps, len(gen_ids)))
    gens["id"] = gen_ids
    gens["p_specified"] = sgen_p * 1e6 * flat.sgen.scaling.to_numpy()
    gens["q_specified"] = 0.0
    start = time.perf_counter()
    result = model.calculate_power_flow(
        update_data={ComponentType.sym_load: loads, ComponentType.sym_gen: gens},
        calculation_method=CalculationMethod.newton_raphson, error_tolerance=1e-10,
        output_component_types={ComponentType.node: ["id", "u_pu"]},
        threading=-1 if threads == 1 else threads,  # -1: sequential
    )
    seconds = time.perf_counter() - start
    node_ids = np.array([converter.get_id("bus", b) for b in bus_map.loc[net.bus.index]])
    order = {int(n): k for k, n in enumerate(result[ComponentType.node]["id"][0])}
    return seconds, result[ComponentType.node]["u_pu"][:, [order[int(n)] for n in node_ids]]
