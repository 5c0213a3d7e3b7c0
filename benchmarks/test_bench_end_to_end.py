"""End to end: `scenarios.pipeline.run_scenario` on bundled scenarios (what `gridflex run` does).

Each round writes the full outputs (netCDF, plots, report) to a temporary folder, so file
writing is part of the figure as it is for a user. A case may shorten the bundled scenario
(``days``, ``draws``) to keep the quick run within its budget.
"""

from __future__ import annotations

import pytest

#: Rounds per size: a run takes seconds to tens of seconds. No separate warm-up round: the
#: Makefile runs this file last, when the other phases have loaded the kernels, and the gate
#: keeps the minimum round.
ROUNDS = {"tiny": 1, "quick": 2, "full": 3}


def _scenario(params: dict):
    from scenarios.load import load_scenario

    scenario = load_scenario(params["scenario"])
    update = {}
    if "days" in params:
        update["time"] = scenario.time.model_copy(update={"days": params["days"]})
    if "draws" in params:
        update["evaluation"] = scenario.evaluation.model_copy(update={"draws": params["draws"]})
    return scenario.model_copy(update=update) if update else scenario


@pytest.mark.cases("end_to_end")
def test_run_scenario(measure, benchmark, size, case, tmp_path):
    from scenarios.pipeline import run_scenario

    scenario = _scenario(case.params(size))
    result = measure(case, "gridflex", lambda: run_scenario(scenario, tmp_path / "out"),
                     units=1, unit="runs", rounds=ROUNDS[size], warmup_rounds=0)
    benchmark.extra_info["stage_s"] = {k: round(v, 4) for k, v in result.timings_s.items()}
    assert (tmp_path / "out" / "result.nc").is_file()
