"""prepare_grid keeps models keyed by net content; reuse gives bit-identical results."""

from __future__ import annotations

import numpy as np
import pytest

from sim import powerflow as pf


@pytest.fixture(autouse=True)
def _fresh_memo():
    pf.clear_grid_memo()
    yield
    pf.clear_grid_memo()


def _injections(net, steps=12):
    rng = np.random.default_rng(3)
    p = net.load.p_mw.to_numpy() * rng.uniform(0.2, 1.5, (steps, len(net.load)))
    q = net.load.q_mvar.to_numpy() * rng.uniform(0.2, 1.5, (steps, len(net.load)))
    g = net.sgen.p_mw.to_numpy() * rng.uniform(0.0, 1.0, (steps, len(net.sgen)))
    return p, q, g


def test_same_content_reuses_the_model_with_identical_results(network_factory):
    net = network_factory("simbench:1-LV-rural1--0-sw")
    first = pf.prepare_grid(net)
    assert "profiles" in net and "profiles" not in first.net  # caller's net untouched
    again = pf.prepare_grid(network_factory("simbench:1-LV-rural1--0-sw"))
    assert again is first
    cached = pf.run_timeseries(net, *_injections(net))
    pf.clear_grid_memo()
    fresh_grid = pf.prepare_grid(net)
    assert fresh_grid is not first
    fresh = pf.run_timeseries(fresh_grid, *_injections(net))
    for name in fresh.data_vars:
        np.testing.assert_array_equal(cached[name].values, fresh[name].values, err_msg=name)


def test_changed_net_is_prepared_again(network_factory):
    net = network_factory("simbench:1-LV-rural1--0-sw")
    first = pf.prepare_grid(net)
    net.line.loc[net.line.index[0], "length_km"] *= 2.0
    second = pf.prepare_grid(net)
    assert second is not first
    assert not np.array_equal(second.ybus.data, first.ybus.data)


def test_fingerprint_ignores_results_and_profiles(network_factory):
    import pandapower as pp

    net = network_factory("simbench:1-LV-rural1--0-sw")
    key = pf.net_fingerprint(net)
    pp.runpp(net)
    net.profiles["load"].iloc[0, 1] += 1.0
    assert pf.net_fingerprint(net) == key
    net.sgen.loc[net.sgen.index[0], "scaling"] = 0.5
    assert pf.net_fingerprint(net) != key


def test_memo_is_bounded(network_factory):
    net = network_factory("simbench:1-LV-rural1--0-sw")
    for k in range(pf.GRID_MEMO_SIZE + 2):
        net.load.loc[net.load.index[0], "p_mw"] = 0.001 * (k + 1)
        pf.prepare_grid(net)
    assert len(pf._grid_memo) == pf.GRID_MEMO_SIZE
