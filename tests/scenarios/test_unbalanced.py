"""Unbalanced mode hooks: VUF violations, customer phases from the population."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from scenarios.errors import InputError
from scenarios.evaluation import count_violations
from scenarios.load import load_scenario
from scenarios.schema import LimitsConfig, NetworkConfig
from scenarios.unbalanced import count_unbalance_violations, customer_phases


def test_schema_defaults_are_balanced_and_en_50160():
    assert NetworkConfig(source="pandapower:cigre_lv").phases == "balanced"
    assert LimitsConfig().vuf_max_pct == 2.0
    with pytest.raises(ValueError, match="phases"):
        NetworkConfig(source="pandapower:cigre_lv", phases="two")


def test_vuf_violations_count_converged_bus_steps_above_the_limit():
    pf = xr.Dataset({"vuf_pct": (("time", "bus"), np.array([[0.5, 2.5], [3.0, 2.0], [9.0, 9.0]])),
                     "converged": ("time", np.array([True, True, False]))})
    assert count_unbalance_violations(pf, LimitsConfig()) == 2
    assert count_unbalance_violations(pf, LimitsConfig(vuf_max_pct=2.6)) == 1
    assert count_unbalance_violations(pf.drop_vars("vuf_pct"), LimitsConfig()) == 0


def test_voltage_violations_count_each_bus_step_once_on_any_phase():
    """A bus with one phase low and another high counts once, whatever the worst phase is."""
    phases = {"vm_a_pu": [[0.949, 1.00]], "vm_b_pu": [[1.052, 1.00]], "vm_c_pu": [[1.0, 1.061]]}
    pf = xr.Dataset({name: (("time", "bus"), np.array(v)) for name, v in phases.items()}
                    | {"vm_pu": (("time", "bus"), np.array([[1.052, 1.061]])),
                       "vuf_pct": (("time", "bus"), np.array([[0.5, 2.1]])),
                       "line_loading_pct": (("time", "line"), np.zeros((1, 1))),
                       "trafo_loading_pct": (("time", "trafo"), np.zeros((1, 1))),
                       "converged": ("time", np.array([True]))})
    scenario = load_scenario("ieee_lv_unbalanced_ev")  # band 0.95–1.06, VUF 2 %
    assert count_violations(pf, scenario) == 3  # bus 0 low phase a; bus 1 high phase c and VUF


def test_customer_phases_from_file_text_or_drawn():
    population = xr.Dataset(
        {"segment": ("customer", np.array(["residential", "commercial", "residential"])),
         "has_heat_pump": ("customer", np.array([False, False, False])),
         "ev_charger_kw": ("customer", np.array([3.7, 0.0, 11.0])),
         "pv_kwp": ("customer", np.zeros(3)), "bus": ("customer", np.array([1, 2, 3]))},
        coords={"customer": [10, 11, 12]})
    np.testing.assert_array_equal(customer_phases(population), [0, 3, 3])
    population["phase"] = ("customer", np.array(["b", "abc", "c"]))
    np.testing.assert_array_equal(customer_phases(population), [1, 3, 2])
    population["phase"] = ("customer", np.array(["b", "x", "c"]))
    population.attrs["file"] = "customers.csv"
    with pytest.raises(InputError, match="customers.csv, line 3, column 'phase'"):
        customer_phases(population)


@pytest.mark.slow
def test_bundled_ev_scenario_one_phase_below_the_band_balanced_inside():
    """``ieee_lv_unbalanced_ev``: EV evening charging on single-phase homes pulls a phase below
    ``vm_min_pu`` on some steps, while the balanced power flow of the same loads stays inside."""
    from scenarios.feeder import build_feeder, run_feeder_powerflow
    from scenarios.load import load_scenario

    scenario = load_scenario("ieee_lv_unbalanced_ev")
    feeder = build_feeder(scenario)
    unbalanced = feeder.before
    limit = scenario.limits.vm_min_pu
    worst = np.minimum(np.minimum(unbalanced.vm_a_pu, unbalanced.vm_b_pu), unbalanced.vm_c_pu)
    assert int((worst.min("bus") < limit).sum()) >= 1
    np.testing.assert_allclose(unbalanced.vm_pu.min(), worst.min())
    _assert_steps_match_runpp_3ph(feeder, unbalanced)
    feeder.scenario = scenario.model_copy(
        update={"network": scenario.network.model_copy(update={"phases": "balanced"})})
    balanced = run_feeder_powerflow(feeder)
    assert float(balanced.vm_pu.min()) >= limit
    # same loads: the feeder-head power of both flows agrees within the unbalance losses
    np.testing.assert_allclose(balanced.p_slack_mw, unbalanced.p_slack_mw, rtol=0.02)


@pytest.mark.slow
def test_bundled_ev_scenario_offers_remove_most_undervoltage(tmp_path):
    """The whole run in unbalanced mode: the EV smart-charging offers remove most of the
    worst-phase undervoltage on the design days (measured 85 → 5 element-steps, P50 of draws)."""
    from scenarios.load import load_scenario
    from scenarios.pipeline import run_scenario

    result = run_scenario(load_scenario("ieee_lv_unbalanced_ev"), tmp_path / "out")
    kpis = result.kpis
    assert kpis["violations_before"] > 20
    assert kpis["violations_after"] < 0.5 * kpis["violations_before"]


def _assert_steps_match_runpp_3ph(feeder, unbalanced):
    """The scenario's own feeder at its lightest, median and heaviest (EV evening) step: every
    load element's per-phase customer load as an asymmetric load, solved by runpp_3ph to its
    fixed point; per-phase |V| within 1e-6 p.u."""
    import copy

    import pandapower as pp

    from customers.phases import phase_load_injections
    from tests.sim.test_powerflow3ph import VM_ATOL_PU, runpp_3ph_tight

    p_kw, q_kvar = feeder.profiles["p_kw"].values, feeder.profiles["q_kvar"].values
    load_p, load_q = phase_load_injections(feeder.incidence, customer_phases(feeder.population),
                                           p_kw, q_kvar)
    head = unbalanced.p_slack_mw.values
    order = np.argsort(head)
    for t in (order[0], order[len(order) // 2], order[-1]):
        net = copy.deepcopy(feeder.net)
        for position, element in enumerate(net.load.index):
            pp.create_asymmetric_load(
                net, int(net.load.at[element, "bus"]),
                **{f"p_{ph}_mw": load_p[t, position, k] for k, ph in enumerate("abc")},
                **{f"q_{ph}_mvar": load_q[t, position, k] for k, ph in enumerate("abc")})
        net.load["p_mw"] = 0.0
        net.load["q_mvar"] = 0.0
        net.sgen["p_mw"] = feeder.sgen_p_mw[t]
        net.sgen["q_mvar"] = 0.0
        ref = runpp_3ph_tight(net).res_bus_3ph.loc[unbalanced.bus.values]
        for ph in "abc":
            np.testing.assert_allclose(unbalanced[f"vm_{ph}_pu"].values[t], ref[f"vm_{ph}_pu"],
                                       rtol=0, atol=VM_ATOL_PU)
