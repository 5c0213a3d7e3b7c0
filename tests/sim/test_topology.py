"""Radial topology helpers on hand-built nets with known answers, and on the bundled grids."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest

from sim.topology import TopologyError, feeding_trafo, upstream_lines


def _feeder():
    """ext_grid─b0═trafo0═b1─line0─b2─line1─b3 ; b2─line2─b4 ; b4 ─(closed bus switch)─ b5."""
    net = pp.create_empty_network()
    b = [pp.create_bus(net, vn_kv=20.0 if i == 0 else 0.4) for i in range(7)]
    pp.create_ext_grid(net, b[0])
    pp.create_transformer(net, b[0], b[1], "0.4 MVA 20/0.4 kV")
    for f, t in ((1, 2), (2, 3), (2, 4)):
        pp.create_line(net, b[f], b[t], 0.1, "NAYY 4x150 SE")
    pp.create_switch(net, b[4], b[5], et="b", closed=True)
    pp.create_line(net, b[5], b[6], 0.1, "NAYY 4x150 SE")  # line3 feeds b6 via the fused b4/b5
    return net


def test_known_feeder():
    net = _feeder()
    assert feeding_trafo(net).tolist() == [-1, 0, 0, 0, 0, 0, 0]
    a = upstream_lines(net).toarray()
    expected = np.array([
        [0, 0, 0, 0],
        [0, 0, 0, 0],
        [1, 0, 0, 0],
        [1, 1, 0, 0],
        [1, 0, 1, 0],
        [1, 0, 1, 0],
        [1, 0, 1, 1],
    ])
    np.testing.assert_array_equal(a, expected)


def test_open_line_switch_disconnects_and_parallel_lines_are_both_upstream():
    net = _feeder()
    pp.create_switch(net, 3, 1, et="l", closed=False)  # line1 open at bus 3
    pp.create_line(net, 1, 2, 0.1, "NAYY 4x150 SE")  # line4 parallel to line0
    assert feeding_trafo(net).tolist() == [-1, 0, 0, -1, 0, 0, 0]
    a = upstream_lines(net).toarray()
    assert a[3].sum() == 0
    np.testing.assert_array_equal(a[6], [1, 0, 1, 1, 1])


def test_out_of_service_line_disconnects():
    net = _feeder()
    net.line.loc[2, "in_service"] = False
    assert feeding_trafo(net).tolist() == [-1, 0, 0, 0, -1, -1, -1]


def test_closed_loop_is_refused():
    net = _feeder()
    pp.create_line(net, 3, 4, 0.1, "NAYY 4x150 SE")
    with pytest.raises(TopologyError, match="not radial — line 4 closes a loop"):
        upstream_lines(net)


def test_no_slack_is_refused():
    net = _feeder()
    net.ext_grid["in_service"] = False
    with pytest.raises(TopologyError, match="no in-service ext_grid"):
        feeding_trafo(net)


@pytest.mark.parametrize("source", ["pandapower:cigre_lv", "simbench:1-MV-rural--0-sw"])
def test_bundled_grids_flow_matches_power_flow(network_factory, source):
    """Σ of downstream bus loads through each line ≈ its pandapower flow (losses aside)."""
    net = network_factory(source)
    pp.runpp(net)
    a = upstream_lines(net)
    assert a.shape == (len(net.bus), len(net.line))
    net_p = net.res_bus.p_mw.fillna(0.0).to_numpy()
    through = a.T @ net_p  # load downstream of each line [MW]
    flow = np.maximum(np.abs(net.res_line.p_from_mw), np.abs(net.res_line.p_to_mw)).to_numpy()
    used = net.line.in_service.to_numpy() & (flow > 0.05)  # where charging and losses are minor
    np.testing.assert_allclose(np.abs(through[used]), flow[used], rtol=0.1)
    ft = feeding_trafo(net)
    slack = net.ext_grid.bus.iloc[0]
    assert ft[slack] == -1
    assert set(ft.unique()) - {-1} <= set(net.trafo.index)
