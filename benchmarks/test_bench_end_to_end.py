"""End to end: `scenarios.pipeline.run_scenario` on bundled scenarios (what `gridflex run` does).

Each round writes the full outputs (netCDF, plots, report) to a temporary folder, so file
writing is part of the figure as it is for a user.
"""

from __future__ import annotations

import pytest


@pytest.mark.cases("end_to_end")
def test_run_scenario(measure, benchmark, size, case, tmp_path):
    from scenarios.load import load_scenario
    from scenarios.pipeline import run_scenario

    scenario = load_scenario(case.params(size)["scenario"])
    result = measure(case, "gridflex", lambda: run_scenario(scenario, tmp_path / "out"),
                     units=1, unit="runs", rounds=3)
    benchmark.extra_info["stage_s"] = {k: round(v, 4) for k, v in result.timings_s.items()}
    assert (tmp_path / "out" / "result.nc").is_file()
