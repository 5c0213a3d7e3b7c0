"""What the console says about a run (issue 20, item 11).

- errors found while running a scenario (its network, its country, conflicting limits) name
  the scenario file, as errors found while loading it do (network and country cases are in
  `test_bad_input`);
- `pareto` on infeasible limits names the limit, as `run` does;
- a solve stopped by its time limit says so, with the gap it reached.
"""

from __future__ import annotations

import dataclasses

import pytest

import optimizer.solve
from scenarios.cli import app

INFEASIBLE = {"limits": {"satisfaction_floor_mean": 1.0}}


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("command", ["run", "pareto"])
def test_infeasible_limits_name_the_limit_and_the_file(make_scenario, cli, tmp_path, command):
    path = make_scenario(INFEASIBLE)
    out = tmp_path / "out"
    result = cli.invoke(app, [command, str(path), "-o", str(out)])
    line = _one_error_line(result)
    assert result.exit_code == 3, line
    assert line.startswith(f"error: {path}: ")
    assert "satisfaction_floor_mean cannot be met" in line and "short by" in line
    assert not out.exists()


def test_a_solve_stopped_by_its_time_limit_says_so(make_scenario, cli, tmp_path, monkeypatch):
    # HiGHS proves the tiny problem optimal at once; the stop is played by the solve's
    # result, the way a larger problem returns it.
    real = optimizer.solve.solve_offers

    def stopped(*args, **kwargs):
        return dataclasses.replace(real(*args, **kwargs), status="time limit", gap=0.0314)

    monkeypatch.setattr(optimizer.solve, "solve_offers", stopped)
    path = make_scenario({"solver": {"time_limit_s": 7.0}})
    result = cli.invoke(app, ["run", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    assert ("warning: the solver stopped at its time limit (solver.time_limit_s = 7 s) with a "
            "gap of 3.14% against its bound") in result.stderr


def test_an_optimal_solve_says_nothing_about_time_limits(tiny_scenario, cli, tmp_path):
    result = cli.invoke(app, ["run", str(tiny_scenario), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    assert "time limit" not in result.stderr
