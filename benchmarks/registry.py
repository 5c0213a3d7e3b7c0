"""Named benchmark cases, each with a ``tiny``, ``quick`` and/or ``full`` size.

A case fixes *what* is measured (phase, grid, customers × steps, customers × offers × design
steps); the size is chosen per run by ``GRIDFLEX_BENCH_SIZE`` or ``pytest --bench-size``:

- ``tiny``: seconds; used by ``tests/benchmarks/test_gate.py`` to prove the gate works;
- ``quick``: the CI smoke run and the stored baseline (``make bench-quick``, < 3 min);
- ``full``: the sizes the issues state targets for (``make bench``; minutes).

A case absent from a size is not run at that size. Peers run on fewer units of work where they
are slow (``peer_*`` parameters) and are scaled to the case's size in the report, marked so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

SIZES = ("tiny", "quick", "full")
DEFAULT_SIZE = "quick"
SIZE_ENV = "GRIDFLEX_BENCH_SIZE"
PHASES = ("profiles", "powerflow", "model_build", "solve", "end_to_end")
#: Peer implementations expected per phase (names as the benchmarks record them); the report
#: lists any that did not run (optional package absent, or skipped).
KERNEL_TWINS = ("numpy twin", "pure-Python twin")
POWERFLOW_PEERS = ("pandapower run_timeseries", "pandapower run_timeseries (own Newton)",
                   "lightsim2grid", "power-grid-model")
BUILD_PEERS = ("highspy direct",)


@dataclass(frozen=True)
class Case:
    """One named workload of one phase; ``sizes[size]`` holds its parameters at that size."""

    name: str
    phase: str
    description: str
    sizes: dict[str, dict[str, Any]] = field(default_factory=dict)
    peers: tuple[str, ...] = ()

    def params(self, size: str) -> dict[str, Any]:
        return self.sizes[size]


def _powerflow_case(code: str, description: str, **sizes: dict[str, Any]) -> Case:
    return Case(f"powerflow/{code}", "powerflow", description,
                {name: {"source": f"simbench:{code}", **p} for name, p in sizes.items()},
                peers=POWERFLOW_PEERS)


# Power flow: the four SimBench grids of issue 3; the year of 15-min steps at full size.
# pandapower's run_timeseries costs ~20 ms/step here, so it is timed on `peer_steps` and scaled.
_YEAR = 35_040
CASES: tuple[Case, ...] = (
    Case(
        "profiles/kernel",
        "profiles",
        "Residential load kernel (EV, heat pump, AC, PV, water heating), chunked over customers "
        "into reused buffers; NumPy and pure-Python twins on fewer customers, scaled.",
        {
            "tiny": {"customers": 256, "steps": 672, "numpy_customers": 32, "python_customers": 1},
            "quick": {"customers": 4000, "steps": 672, "numpy_customers": 500,
                      "python_customers": 3},
            "full": {"customers": 10_000, "steps": _YEAR, "numpy_customers": 200,
                     "python_customers": 2},
        },
        peers=KERNEL_TWINS,
    ),
    Case(
        "profiles/simulate_profiles",
        "profiles",
        "Public load synthesis on a mixed population (population → labelled, validated Dataset).",
        {
            "quick": {"customers": 1000, "steps": 672},
            "full": {"customers": 10_000, "steps": 2976},
        },
    ),
    _powerflow_case(
        "1-LV-rural1--0-sw", "SimBench LV rural feeder (15 buses), its own SimBench profiles.",
        tiny={"steps": 96, "peer_steps": 8},
        quick={"steps": 2976, "peer_steps": 8},
        full={"steps": _YEAR, "peer_steps": 200},
    ),
    _powerflow_case(
        "1-LV-urban6--0-sw", "SimBench LV urban feeder (59 buses), its own SimBench profiles.",
        full={"steps": _YEAR, "peer_steps": 200},
    ),
    _powerflow_case(
        "1-MV-rural--0-sw", "SimBench MV rural grid (101 buses), its own SimBench profiles.",
        full={"steps": _YEAR, "peer_steps": 200},
    ),
    _powerflow_case(
        "1-MV-urban--0-sw", "SimBench MV urban grid (150 buses), its own SimBench profiles.",
        quick={"steps": 2976, "peer_steps": 8},
        full={"steps": _YEAR, "peer_steps": 200},
    ),
    Case(
        "model_build/offers",
        "model_build",
        "Offer-assignment MILP: NumPy preparation + Pyomo build + hand-off to HiGHS, next to the "
        "same matrices passed to highspy directly (the floor).",
        {
            "tiny": {"customers": 100, "offers": 8, "steps": 48},
            "quick": {"customers": 1000, "offers": 10, "steps": 96},
            "full": {"customers": 10_000, "offers": 10, "steps": 96},
        },
        peers=BUILD_PEERS,
    ),
    Case(
        "model_build/offers-100k",
        "model_build",
        "Utility-scale build: 100k customers × 10 offers × 96 design steps.",
        {"full": {"customers": 100_000, "offers": 10, "steps": 96}},
        peers=BUILD_PEERS,
    ),
    Case(
        "solve/offers-mip",
        "solve",
        "Exact branch-and-cut on a small problem (`solve_offers(method='mip')`).",
        {
            "quick": {"customers": 200, "offers": 10, "steps": 96, "method": "mip"},
            "full": {"customers": 300, "offers": 12, "steps": 96, "method": "mip"},
        },
    ),
    Case(
        "solve/offers-lp-fix",
        "solve",
        "LP relaxation → fix → sub-MIP at scale (`solve_offers(method='lp-fix')`).",
        {
            "quick": {"customers": 1000, "offers": 10, "steps": 96, "method": "lp-fix"},
            "full": {"customers": 10_000, "offers": 10, "steps": 96, "method": "lp-fix"},
        },
    ),
    Case(
        "solve/offers-lagrange-fix",
        "solve",
        "Lagrangian dual → fix → sub-MIP, no full model (`solve_offers(method='lagrange-fix')`).",
        {
            "quick": {"customers": 10_000, "offers": 10, "steps": 96, "method": "lagrange-fix"},
            "full": {"customers": 100_000, "offers": 10, "steps": 96, "method": "lagrange-fix"},
        },
    ),
    Case(
        "end_to_end/cigre_lv_winter",
        "end_to_end",
        "`gridflex run cigre_lv_winter`: 150 customers, a week at 15 min, optimize + 20 replays "
        "(quick: 2 days, 2 replays).",
        {"quick": {"scenario": "cigre_lv_winter", "days": 2, "draws": 2},
         "full": {"scenario": "cigre_lv_winter"}},
    ),
    Case(
        "end_to_end/simbench_lv_rural_ev_hp",
        "end_to_end",
        "Bundled SimBench LV rural scenario with EVs and heat pumps, end to end.",
        {"full": {"scenario": "simbench_lv_rural_ev_hp"}},
    ),
)


def bench_size(value: str | None = None) -> str:
    """The size of this run: ``value`` if given, else ``$GRIDFLEX_BENCH_SIZE``, else quick."""
    size = (value or os.environ.get(SIZE_ENV) or DEFAULT_SIZE).strip().lower()
    if size not in SIZES:
        raise ValueError(f"{SIZE_ENV}: '{size}' is not one of {', '.join(SIZES)}")
    return size


def cases(phase: str, size: str) -> list[Case]:
    """The cases of ``phase`` that have parameters at ``size`` (registry order)."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase '{phase}'")
    return [case for case in CASES if case.phase == phase and size in case.sizes]


def case_named(name: str) -> Case:
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(name)
