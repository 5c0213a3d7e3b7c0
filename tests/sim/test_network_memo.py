"""Network loader: nets kept parsed per process, keyed by content; callers get private copies."""

from __future__ import annotations

import copy

import pandapower as pp
import pytest

from sim import network
from sim.network import clear_memo, load_network


@pytest.fixture(autouse=True)
def _fresh_memo():
    clear_memo()
    yield
    clear_memo()


def _refuse_parse(*args, **kwargs):
    raise AssertionError("parsed again although the content did not change")


def test_second_load_is_not_parsed_and_copies_are_private(tmp_path, monkeypatch):
    first = load_network("pandapower:cigre_lv", cache_dir=tmp_path)
    reference = copy.deepcopy(first)
    first.load["p_mw"] *= 3.0
    first.bus.drop(first.bus.index[-1], inplace=True)
    monkeypatch.setattr(pp, "from_json_string", _refuse_parse)
    second = load_network("pandapower:cigre_lv", cache_dir=tmp_path)
    assert second is not first
    assert second.bus.equals(reference.bus)
    assert second.load.equals(reference.load)
    second.line["length_km"] = 0.0
    third = load_network("pandapower:cigre_lv", cache_dir=tmp_path)
    assert third.line.equals(reference.line)


def test_changed_file_is_parsed_again(tmp_path, network_factory):
    net = network_factory("pandapower:cigre_lv")
    path = tmp_path / "feeder.json"
    pp.to_json(net, str(path))
    before = load_network("file:feeder.json", base_dir=tmp_path)
    net.load.loc[net.load.index[0], "p_mw"] = 0.123
    pp.to_json(net, str(path))
    after = load_network("file:feeder.json", base_dir=tmp_path)
    assert after.load.p_mw.iloc[0] == 0.123
    assert before.load.p_mw.iloc[0] != 0.123


def test_memo_is_bounded(tmp_path, network_factory):
    net = network_factory("pandapower:cigre_lv")
    for k in range(network.MEMO_SIZE + 2):
        net.load.loc[net.load.index[0], "p_mw"] = 0.01 * (k + 1)
        pp.to_json(net, str(tmp_path / f"feeder{k}.json"))
        load_network(f"file:feeder{k}.json", base_dir=tmp_path)
    assert len(network._memo) == network.MEMO_SIZE


def test_unsafe_file_is_refused_every_time(tmp_path):
    path = tmp_path / "evil.json"
    path.write_text('{"_module": "os", "_class": "system", "_object": "{}"}')
    for _ in range(2):
        with pytest.raises(Exception, match="disallowed object"):
            load_network("file:evil.json", base_dir=tmp_path)
