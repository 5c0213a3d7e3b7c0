"""The benchmark regression gate (`benchmarks.gate`): its rules, and that it catches a real
slowdown of a kernel while passing an unchanged one.

The real part runs the tiny offer-model build benchmark in subprocesses through the same harness
and clock `make bench-check` uses: once to record a baseline, once with
``GRIDFLEX_BENCH_SLOWDOWN=6`` (the harness runs the build six times per round; must fail), and
once unchanged (must pass), both judged at a tolerance wide enough for shared-machine noise.
No speed is asserted: only the gate's verdict on figures it is given.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gate

REPO = Path(__file__).resolve().parents[2]


def _bench(case: str, seconds: float, calibration: float = 0.05, *, implementation="gridflex",
           size="tiny", slowdown=1) -> dict:
    """One benchmark entry shaped as the harness writes it (pytest-benchmark JSON)."""
    return {
        "name": f"test[{case}]",
        "fullname": f"benchmarks/test_x.py::test[{case}]",
        "stats": {"min": seconds, "median": seconds * 1.1, "iqr": seconds * 0.05,
                  "rounds": 5, "mean": seconds * 1.1, "max": seconds * 1.3},
        "extra_info": {
            "case": case, "phase": case.split("/")[0], "implementation": implementation,
            "peer": implementation != "gridflex", "size": size, "params": {}, "units": 100.0,
            "unit": "steps", "scale": 1.0, "note": "", "calibration_s": calibration,
            "calibration_version": 1, "slowdown": slowdown, "numba_threads": 1,
            "clock": "time.process_time",
        },
    }


def _write(path: Path, benchmarks: list[dict]) -> Path:
    path.write_text(json.dumps({"benchmarks": benchmarks, "datetime": "2026-01-01T00:00:00",
                                "machine_info": {"cpu": {"brand_raw": "test cpu"}}}))
    return path


@pytest.fixture
def recorded(tmp_path):
    runs = [_bench("profiles/kernel", 0.10), _bench("powerflow/x", 0.20),
            _bench("powerflow/x", 5.0, implementation="pandapower run_timeseries")]
    results = _write(tmp_path / "base.json", runs)
    baseline = tmp_path / "baseline.json"
    gate.record_baseline(results, baseline)
    return tmp_path, runs, baseline


def test_record_keeps_only_gridflex_cases_as_calibrated_ratios(recorded):
    _, _, baseline = recorded
    data = json.loads(baseline.read_text())
    assert set(data["cases"]) == {"profiles/kernel", "powerflow/x"}
    assert data["cases"]["profiles/kernel"]["calibrated"] == pytest.approx(0.10 / 0.05)
    assert data["size"] == "tiny" and data["tolerance"] == 0.25


def test_same_figures_on_a_faster_machine_pass(recorded):
    tmp_path, runs, baseline = recorded
    faster = copy.deepcopy(runs)
    for entry in faster:  # everything, calibration included, twice as fast
        entry["stats"]["min"] /= 2
        entry["extra_info"]["calibration_s"] /= 2
    results = _write(tmp_path / "faster.json", faster)
    assert all(v.ok for v in gate.check(results, baseline))
    assert gate.main(["check", str(results), "--baseline", str(baseline)]) == gate.EXIT_OK


@pytest.mark.parametrize(("factor", "passes"), [(1.20, True), (1.30, False), (0.5, True)])
def test_gate_fails_beyond_25_percent(recorded, factor, passes):
    tmp_path, runs, baseline = recorded
    changed = copy.deepcopy(runs)
    changed[0]["stats"]["min"] *= factor
    results = _write(tmp_path / "changed.json", changed)
    verdicts = {v.case: v for v in gate.check(results, baseline)}
    assert verdicts["profiles/kernel"].ok is passes
    assert verdicts["powerflow/x"].ok
    expected = gate.EXIT_OK if passes else gate.EXIT_REGRESSION
    assert gate.main(["check", str(results), "--baseline", str(baseline)]) == expected


def test_slower_peer_is_never_gated(recorded):
    tmp_path, runs, baseline = recorded
    changed = copy.deepcopy(runs)
    changed[2]["stats"]["min"] *= 10
    results = _write(tmp_path / "peer.json", changed)
    assert gate.main(["check", str(results), "--baseline", str(baseline)]) == gate.EXIT_OK


def test_missing_case_fails_unless_allowed(recorded):
    tmp_path, runs, baseline = recorded
    results = _write(tmp_path / "partial.json", runs[:1])
    assert gate.main(["check", str(results), "--baseline", str(baseline)]) == gate.EXIT_REGRESSION
    assert gate.main(["check", str(results), "--baseline", str(baseline),
                      "--allow-missing"]) == gate.EXIT_OK


def test_other_size_or_slowed_baseline_is_refused(recorded):
    tmp_path, runs, baseline = recorded
    quick = _write(tmp_path / "quick.json", [_bench("profiles/kernel", 0.1, size="quick")])
    assert gate.main(["check", str(quick), "--baseline", str(baseline)]) == gate.EXIT_UNUSABLE
    slowed = _write(tmp_path / "slowed.json", [_bench("profiles/kernel", 0.3, slowdown=3)])
    with pytest.raises(gate.UnusableResults, match="slowdown"):
        gate.record_baseline(slowed, tmp_path / "never.json")


def test_committed_baseline_is_a_quick_run_of_registered_cases():
    from benchmarks.registry import case_named

    data = json.loads(gate.DEFAULT_BASELINE.read_text())
    assert data["size"] == "quick"
    for key, figures in data["cases"].items():
        assert "quick" in case_named(key.split(" [")[0]).sizes
        assert figures["calibrated"] > 0


# --- the real thing: a tiny kernel benchmark through the harness, unchanged and slowed ---

def _run_kernel_benchmark(out: Path, slowdown: int) -> Path:
    env = {**os.environ, "GRIDFLEX_BENCH_SLOWDOWN": str(slowdown), "NUMBA_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "GRIDFLEX_BENCH_SIZE": "tiny"}
    command = [sys.executable, "-m", "pytest", "benchmarks/test_bench_model_build.py",
               "-p", "no:cacheprovider", "-q", "-k", "test_build_gridflex",
               "--benchmark-timer=time.process_time", "--benchmark-json", str(out)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def test_gate_passes_unchanged_kernel_and_fails_slowed_kernel(tmp_path):
    # A 10 ms case on this shared 2-core machine has been measured 27 % slower than its own
    # baseline minutes earlier with nothing changed, so the real runs are judged at a 100 %
    # tolerance (twice the baseline) against a six-fold slowdown: a margin of about 3× on either
    # side of the line. The 25 % rule itself is checked on given figures above.
    baseline = tmp_path / "baseline.json"
    gate.record_baseline(_run_kernel_benchmark(tmp_path / "base.json", 1), baseline)
    tolerance = ["--tolerance", "1.0"]

    slowed = _run_kernel_benchmark(tmp_path / "slowed.json", 6)
    assert json.loads(slowed.read_text())["benchmarks"][0]["extra_info"]["slowdown"] == 6
    assert gate.main(["check", str(slowed), "--baseline", str(baseline), *tolerance]) \
        == gate.EXIT_REGRESSION

    # Unchanged code passes, as `make bench-check` runs it: a case that fails is re-measured
    # once (shared-machine noise), and its best figure counts.
    same = _run_kernel_benchmark(tmp_path / "same.json", 1)
    assert gate.main(["check", "--rerun-failed", str(same), "--baseline", str(baseline),
                      *tolerance]) == gate.EXIT_OK


def test_rerun_repeats_failed_cases_under_the_runs_own_conditions(recorded, monkeypatch):
    tmp_path, runs, baseline = recorded
    slowed = copy.deepcopy(runs)
    for entry in slowed:
        entry["extra_info"]["slowdown"] = 3
        entry["fullname"] = f"benchmarks/test_x.py::{entry['name']}"
    slowed[0]["stats"]["min"] *= 3
    results = _write(tmp_path / "slowed.json", slowed)
    calls = []

    def fake_run(command, env, **kwargs):
        calls.append((command, env))
        out = Path(next(a for a in command if a.startswith("--benchmark-json=")).split("=", 1)[1])
        _write(out, slowed[:1])  # the re-measurement is just as slow
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(gate.subprocess, "run", fake_run)
    assert gate.main(["check", "--rerun-failed", str(results), "--baseline", str(baseline)]) == 1
    (command, env), = calls
    assert "benchmarks/test_x.py::test[profiles/kernel]" in command
    assert env["GRIDFLEX_BENCH_SLOWDOWN"] == "3" and env["GRIDFLEX_BENCH_SIZE"] == "tiny"
