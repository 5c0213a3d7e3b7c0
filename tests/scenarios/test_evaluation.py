"""`scenarios.evaluation.count_violations` on a hand-made 3-bus case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from scenarios.evaluation import converged_peak_kw, count_violations
from tests.customers.feeder_case import make_scenario


def _three_bus(converged=(True, True, True, False)) -> xr.Dataset:
    """Slack bus 0 — line 0 — bus 1 — line 1 — bus 2, one transformer, four steps.

    | step | vm bus 0/1/2 [p.u.] | line 0/1 loading [%] | trafo [%] | converged |
    |---|---|---|---|---|
    | 0 | 1.00 0.97 0.96 | 60 40 | 50 | yes |
    | 1 | 1.00 0.95 0.93 | 101 80 | 90 | yes |
    | 2 | 1.06 1.04 NaN  | 100 120 | 105 | yes |
    | 3 | 1.00 0.80 0.70 | 300 300 | 300 | no |
    """
    vm = np.array([[1.00, 0.97, 0.96], [1.00, 0.95, 0.93], [1.06, 1.04, np.nan],
                   [1.00, 0.80, 0.70]])
    line = np.array([[60.0, 40.0], [101.0, 80.0], [100.0, 120.0], [300.0, 300.0]])
    trafo = np.array([[50.0], [90.0], [105.0], [300.0]])
    time = pd.date_range("2016-01-11", periods=4, freq="15min")
    return xr.Dataset(
        {"vm_pu": (("time", "bus"), vm), "line_loading_pct": (("time", "line"), line),
         "trafo_loading_pct": (("time", "trafo"), trafo),
         "converged": ("time", np.array(converged)),
         "p_slack_mw": ("time", np.array([0.2, 0.5, 0.4, 9.0]))},
        coords={"time": time, "bus": [0, 1, 2], "line": [0, 1], "trafo": [0]},
    )


def test_count_violations_by_hand():
    """Band 0.95–1.05, lines ≤ 100 %, transformer ≤ 100 % (the default 1000 % is capped at
    100 % for counting). Converged steps only:

    - step 0: nothing;
    - step 1: bus 2 (0.93 < 0.95) and line 0 (101 % > 100 %) → 2 (bus 1 at exactly 0.95 is in);
    - step 2: bus 0 (1.06 > 1.05), line 1 (120 %), the transformer (105 %) → 3 (line 0 at
      exactly 100 % is in; bus 2 NaN is not counted);
    - step 3 did not converge: left out (its 5 breaches — buses 1, 2, both lines, the
      transformer — would count otherwise).
    Total 5; the line loading alone is 2 of them.
    """
    scenario = make_scenario()
    assert count_violations(_three_bus(), scenario) == 5
    tolerant_lines = scenario.model_copy(update={"limits": scenario.limits.model_copy(
        update={"line_loading_max_pct": 150.0})})
    assert count_violations(_three_bus(), tolerant_lines) == 3
    assert count_violations(_three_bus(converged=(True,) * 4), scenario) == 5 + 5


def test_converged_peak_leaves_out_failed_steps():
    assert converged_peak_kw(_three_bus()) == 500.0
