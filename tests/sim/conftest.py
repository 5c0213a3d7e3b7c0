"""Session-scoped pandapower nets and solver models shared by the sim tests."""

from __future__ import annotations

import copy

import pytest

# The bundled scenarios' grids: every power-flow accuracy test runs on them.
BUNDLED_GRIDS = ("pandapower:cigre_lv", "simbench:1-LV-rural1--0-sw", "simbench:1-MV-rural--0-sw")


@pytest.fixture(scope="session")
def network_factory():
    """``factory(source)`` → a fresh copy of the net (loaded once per session, via the cache)."""
    from sim.network import load_network

    loaded: dict[str, object] = {}

    def factory(source: str):
        if source not in loaded:
            loaded[source] = load_network(source)
        return copy.deepcopy(loaded[source])

    return factory


@pytest.fixture(scope="session")
def grid_factory(network_factory):
    """``factory(source)`` → (net, GridModel), prepared once per session."""
    from sim.powerflow import prepare_grid

    prepared: dict[str, tuple] = {}

    def factory(source: str):
        if source not in prepared:
            net = network_factory(source)
            prepared[source] = (net, prepare_grid(net))
        return prepared[source]

    return factory
