"""Network loader: built-ins, SimBench codes, JSON files, cache and error messages."""

from __future__ import annotations

import json

import pandapower as pp
import pytest

from scenarios.errors import InputError
from sim.network import PANDAPOWER_NETWORKS, load_network


def test_builtin_is_cached_and_identical(tmp_path):
    first = load_network("pandapower:cigre_lv", cache_dir=tmp_path)
    cached = list(tmp_path.iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".json"
    assert "cigre_lv" in cached[0].name and pp.__version__ in cached[0].name
    second = load_network("pandapower:cigre_lv", cache_dir=tmp_path)
    assert len(second.bus) == len(first.bus) == 44
    assert second.line.equals(first.line)
    assert second.load.equals(first.load)
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDFLEX_CACHE", str(tmp_path / "env-cache"))
    load_network("pandapower:cigre_lv")
    assert len(list((tmp_path / "env-cache").iterdir())) == 1


def test_corrupt_cache_entry_is_rebuilt(tmp_path):
    load_network("pandapower:cigre_lv", cache_dir=tmp_path)
    (entry,) = tmp_path.iterdir()
    entry.write_text("{ not json")
    net = load_network("pandapower:cigre_lv", cache_dir=tmp_path)
    assert len(net.bus) == 44


def test_simbench_net_keeps_profiles(network_factory):
    net = network_factory("simbench:1-LV-rural1--0-sw")
    assert len(net.bus) == 15 and len(net.load) == 13
    assert {"load", "renewables"} <= set(net.profiles)
    assert net.profiles["load"].shape[0] == 35136


def test_every_registered_builtin_name_resolves():
    import pandapower.networks as pn

    for function_name, _ in PANDAPOWER_NETWORKS.values():
        assert callable(getattr(pn, function_name))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("pandapower:nope", "unknown pandapower network 'nope'; known: case33bw, cigre_lv"),
        ("simbench:9-XX-nothing", "unknown SimBench code '9-XX-nothing'"),
        ("ftp:thing", "must be 'pandapower:NAME'"),
        ("pandapower:", "must be 'pandapower:NAME'"),
        ("file:missing.json", "missing.json' not found"),
    ],
)
def test_bad_sources_name_the_problem(tmp_path, source, message):
    with pytest.raises(InputError, match="network.source") as info:
        load_network(source, base_dir=tmp_path, cache_dir=tmp_path)
    assert message in str(info.value)


def test_file_relative_to_base_dir(tmp_path, network_factory):
    net = network_factory("pandapower:cigre_lv")
    (tmp_path / "grids").mkdir()
    pp.to_json(net, str(tmp_path / "grids" / "feeder.json"))
    loaded = load_network("file:grids/feeder.json", base_dir=tmp_path)
    assert len(loaded.bus) == len(net.bus)
    assert loaded.line.length_km.sum() == pytest.approx(net.line.length_km.sum())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{ broken", "is not valid JSON"),
        ('{"a": 1}', "is not a pandapower net"),
        ('{"_module": "os", "_class": "system", "_object": "rm -rf /"}', "module 'os'"),
        ('{"x": {"_module": "subprocess", "_class": "Popen", "_object": "[]"}}', "module 'subprocess'"),
    ],
)
def test_malformed_or_unsafe_files_are_refused(tmp_path, content, message):
    path = tmp_path / "feeder.json"
    path.write_text(content)
    with pytest.raises(InputError, match="feeder.json") as info:
        load_network(f"file:{path}")
    assert message in str(info.value)


def test_file_without_slack_is_refused(tmp_path, network_factory):
    net = network_factory("pandapower:cigre_lv")
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    path = tmp_path / "noslack.json"
    pp.to_json(net, str(path))
    with pytest.raises(InputError, match="no in-service ext_grid"):
        load_network(f"file:{path}")


def test_json_scan_accepts_pandapower_files(tmp_path, network_factory):
    net = network_factory("simbench:1-LV-rural1--0-sw")
    path = tmp_path / "sb.json"
    pp.to_json(net, str(path))
    modules = set()

    def hook(obj):
        if "_module" in obj:
            modules.add(obj["_module"].split(".")[0])
        return obj

    json.loads(path.read_text(), object_hook=hook)
    assert modules <= {"pandapower", "pandas", "numpy", "builtins", "geojson", "shapely"}
    assert len(load_network(f"file:{path}").load) == len(net.load)


def test_ensure_loads_reuses_existing_and_creates_missing(network_factory):
    import numpy as np

    from sim.network import CUSTOMER_LOAD_NAME, ensure_loads

    net = network_factory("simbench:1-LV-rural1--0-sw")
    loaded_bus = int(net.load.bus.iloc[0])
    existing = int(net.load.index[0])
    free_buses = sorted(set(net.bus.index) - set(net.load.bus))
    empty_bus = int(free_buses[0])
    # An out-of-service load does not count: its bus gets a new element too.
    off_bus = int(free_buses[1])
    import pandapower as pp

    off = pp.create_load(net, bus=off_bus, p_mw=0.01, in_service=False)
    n_before = len(net.load)

    loads = ensure_loads(net, np.array([loaded_bus, empty_bus, empty_bus, off_bus]))

    assert loads.dtype == np.int64 and loads[0] == existing
    assert loads[1] == loads[2] and loads[3] != off
    assert len(net.load) == n_before + 2
    created = net.load.loc[[loads[1], loads[3]]]
    assert created.bus.tolist() == [empty_bus, off_bus]
    assert (created.name == CUSTOMER_LOAD_NAME).all()
    assert (created.p_mw == 0.0).all() and (created.q_mvar == 0.0).all()
    assert created.in_service.all()
    # Idempotent: a second call creates nothing and returns the same elements.
    again = ensure_loads(net, np.array([off_bus, empty_bus, loaded_bus]))
    assert again.tolist() == [loads[3], loads[1], existing] and len(net.load) == n_before + 2
    pp.runpp(net)
    assert net.converged


def test_ensure_loads_rejects_unknown_bus(network_factory):
    import numpy as np

    from sim.network import ensure_loads

    net = network_factory("pandapower:cigre_lv")
    with pytest.raises(InputError, match="bus 999999 is not a bus"):
        ensure_loads(net, np.array([0, 999999]))
