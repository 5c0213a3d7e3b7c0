"""The feeder's power flow in unbalanced mode (``network.phases = "unbalanced"``).

Customers load the phase they are connected to (`customers.phases`): the customers file's
``phase`` column where given, else drawn from segment and devices. Their loads are aggregated
per load element and phase and solved with the unbalanced power flow (`sim.powerflow3ph`) on
pandapower's sequence-frame model of the net, which needs its zero-sequence data. The Dataset
carries the balanced path's variables the later stages read (``vm_pu`` is the worst phase,
``p_slack_mw``, ``line_loading_pct`` of the worst phase, ``trafo_loading_pct``, ``converged``)
plus the per-phase voltages and the voltage unbalance factor ``vuf_pct``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from scenarios.schema import LimitsConfig


def customer_phases(population: xr.Dataset) -> np.ndarray:
    """Phase code per customer (0, 1, 2 = a, b, c; 3 = abc): the population's ``phase`` text
    where present (read and checked by `customers.io.read_customers_csv`), else drawn."""
    from customers.phases import draw_phases, parse_phases

    if "phase" in population:
        return parse_phases(population["phase"].values, str(population.attrs.get("file",
                                                                                "customers")))
    return draw_phases(population["segment"].values, population["has_heat_pump"].values,
                       population["ev_charger_kw"].values, population["pv_kwp"].values,
                       population["bus"].values, population["customer"].values)


def run_unbalanced_powerflow(feeder, p_kw: np.ndarray, q_kvar: np.ndarray,
                             steps: np.ndarray) -> xr.Dataset:
    """Unbalanced power flow of customer loads ``[customer, time(steps)]`` [kW], [kvar] on the
    feeder (`scenarios.feeder.FeederModel`), time labelled with the feeder's stamps."""
    from customers.phases import phase_load_injections
    from sim.powerflow3ph import prepare_grid_3ph, run_timeseries_3ph

    # The model is built once per feeder (one runpp_3ph) and reused by every replay draw.
    key = (id(feeder.net), len(feeder.net.load), len(feeder.net.sgen))
    cached = feeder.__dict__.get("_unbalanced_grid")
    if cached is None or cached[0] != key:
        cached = (key, prepare_grid_3ph(feeder.net))
        feeder.__dict__["_unbalanced_grid"] = cached
    load_p, load_q = phase_load_injections(feeder.incidence, customer_phases(feeder.population),
                                           p_kw, q_kvar)
    sgen_p = feeder.sgen_p_mw[steps]
    result = run_timeseries_3ph(cached[1], load_p_mw=load_p, load_q_mvar=load_q,
                                sgen_p_mw=sgen_p, sgen_q_mvar=np.zeros_like(sgen_p))
    return result.assign_coords(time=feeder.time[steps])


def voltage_extremes(pf: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest voltage ``[time, bus]`` [p.u.] a customer can see: over the phases in
    unbalanced mode (the worst-phase ``vm_pu`` alone would hide a low phase behind a high one
    when the band is asymmetric), ``vm_pu`` twice in balanced mode."""
    if "vm_a_pu" not in pf:
        vm = pf["vm_pu"].values
        return vm, vm
    phases = [pf[f"vm_{ph}_pu"].values for ph in "abc"]
    return np.minimum(np.minimum(*phases[:2]), phases[2]), np.maximum(np.maximum(*phases[:2]),
                                                                        phases[2])


def count_unbalance_violations(pf: xr.Dataset, limits: LimitsConfig) -> int:
    """Bus-steps of converged steps whose voltage unbalance factor exceeds ``vuf_max_pct``
    (EN 50160: 2 % of 10-min means); 0 for a balanced power flow (no ``vuf_pct``)."""
    if "vuf_pct" not in pf:
        return 0
    ok = pf["converged"].values.astype(bool)
    with np.errstate(invalid="ignore"):
        return int(np.sum(pf["vuf_pct"].values[ok] > limits.vuf_max_pct))
