"""The day-ahead acceptance targets on fixed seeds, as `gridflex forecast` reports them.

MAE skill and P10–P90 coverage over the evaluation period (the window, extended back into the
simulated history to 56 days); the top-5 hit rate over the window (see
`scenarios.forecast_command.check_targets`). The bundled scenarios and the 92-day summer season
are slow (a feeder build, a simulated year and a rolling-origin evaluation each); CI runs a small
feeder with a shorter history (tests/scenarios/test_forecasting.py).
"""

from __future__ import annotations

import datetime as dt

import pytest

MAE_REDUCTION_MIN_PCT = 20.0
COVERAGE_RANGE_PCT = (75.0, 85.0)
TOP5_HIT_MIN = 0.6


def _forecast(scenario, history_days=365):
    from scenarios.feeder import build_feeder
    from scenarios.forecasting import forecast_feeder

    return forecast_feeder(scenario, build_feeder(scenario), lead_days=1,
                           history_days=history_days)


def assert_targets(result):
    from scenarios.forecast_command import check_targets

    evaluation = result.table.score(result.evaluation, 1)
    window = result.table.score(result.window, 1)
    assert evaluation.days >= 56
    assert evaluation.mae_reduction_vs_naive_pct >= MAE_REDUCTION_MIN_PCT, evaluation
    assert COVERAGE_RANGE_PCT[0] <= evaluation.coverage_pct <= COVERAGE_RANGE_PCT[1], evaluation
    assert window.top_k_hit_rate >= TOP5_HIT_MIN, window
    assert all(ok for _, _, ok in check_targets(result))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cigre_lv_winter", "simbench_lv_rural_ev_hp",
                                  "simbench_mv_rural_summer"])
def test_bundled_scenarios_meet_the_targets(name):
    from scenarios.load import load_scenario

    assert_targets(_forecast(load_scenario(name)))


@pytest.mark.slow
def test_summer_season_meets_the_targets():
    from scenarios.load import load_scenario

    scenario = load_scenario("simbench_mv_rural_summer")
    time = scenario.time.model_copy(update={"start": dt.date(2016, 6, 1), "days": 92})
    result = _forecast(scenario.model_copy(update={"time": time}))
    assert len(result.window) == 92
    assert_targets(result)

