"""Scale curves: wall time and peak memory versus customers and versus time steps, to PNG.

Sweeps (each point in a fresh Python process, so that its peak memory is its own):

- ``customers``: load synthesis (`sim.profiles.simulate_profiles`, one design day of 96 steps)
  for 1k → 100k customers, and the offer-model build + hand-off
  (`optimizer.model.build_model` → `optimizer.handoff.to_highs`, 10 offers × 96 steps) for
  1k → 10k customers (``--optimizer-max`` raises it; 100k needs ~6 GB);
- ``steps``: load synthesis for 1,000 customers and the time-series power flow on SimBench
  ``1-MV-urban--0-sw`` (its own profiles) for 96 → 35,040 steps (a day to a year at 15 min).

Time is one measured call after set-up (inputs built, kernels loaded by a small warm-up call);
peak memory is the growth of the process' peak resident set during that call [MB].

Usage::

    python -m benchmarks.scale_curves [--out-dir benchmarks/results] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CUSTOMERS = (1_000, 3_000, 10_000, 30_000, 100_000)
OPTIMIZER_CUSTOMERS = (1_000, 3_000, 10_000, 30_000, 100_000)
STEPS = (96, 672, 2_976, 8_784, 35_040)
QUICK = {"customers": (1_000, 10_000), "optimizer": (1_000, 3_000), "steps": (96, 2_976)}
PROFILE_STEPS = 96
STEP_CUSTOMERS = 1_000
POWERFLOW_SOURCE = "simbench:1-MV-urban--0-sw"
SEED = 11


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux ≥ 4.0)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _profiles_call(customers: int, steps: int):
    import pandas as pd

    from scenarios.schema import WeatherConfig
    from sim.profiles import simulate_profiles
    from sim.weather import build_weather
    from tests.sim.population_factory import make_population

    time_index = pd.date_range("2016-01-11", periods=steps, freq="15min")
    weather = build_weather(WeatherConfig(), time_index, seed=SEED, base_dir=Path("."))
    population = make_population(customers, seed=SEED)
    simulate_profiles(make_population(8, seed=SEED), weather, seed=SEED, country="DE")
    return lambda: simulate_profiles(population, weather, seed=SEED, country="DE")


def _powerflow_call(steps: int):
    from benchmarks.bench_powerflow import profile_injections
    from sim.network import load_network
    from sim.powerflow import prepare_grid, run_timeseries

    net = load_network(POWERFLOW_SOURCE)
    grid = prepare_grid(net)
    injections = profile_injections(net, steps)
    run_timeseries(grid, *(a[:8] for a in injections))
    return lambda: run_timeseries(grid, *injections)


def _model_build_call(customers: int):
    from optimizer.handoff import to_highs
    from optimizer.model import build_model
    from optimizer.synthetic import synthetic_problem

    problem = synthetic_problem(customers, 10, 96, seed=SEED, budget_eur=20.0 * customers,
                                satisfaction_floor_mean=0.6)
    return lambda: to_highs(build_model(problem))


def measure_point(curve: str, value: int) -> dict:
    """Set up, then time one call and its peak memory growth (run in a fresh process)."""
    if curve == "profiles-customers":
        call = _profiles_call(value, PROFILE_STEPS)
    elif curve == "profiles-steps":
        call = _profiles_call(STEP_CUSTOMERS, value)
    elif curve == "powerflow-steps":
        call = _powerflow_call(value)
    elif curve == "model-build-customers":
        call = _model_build_call(value)
    else:
        raise ValueError(f"unknown curve '{curve}'")
    _reset_peak_rss()
    rss_before = _status_mb("VmRSS")
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    peak = max(_status_mb("VmHWM") - rss_before, 0.0)
    del result
    return {"curve": curve, "value": value, "seconds": seconds, "peak_mb": peak}


def _run_point(curve: str, value: int) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_curves", "--point", curve, str(value)],
        capture_output=True, text=True, env=env, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{curve} at {value}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def sweep(quick: bool = False, optimizer_max: int = 10_000,
          curves: tuple[str, ...] | None = None) -> list[dict]:
    plan = [("profiles-customers", v) for v in (QUICK["customers"] if quick else CUSTOMERS)]
    plan += [("model-build-customers", v)
             for v in (QUICK["optimizer"] if quick else OPTIMIZER_CUSTOMERS) if v <= optimizer_max]
    steps = QUICK["steps"] if quick else STEPS
    plan += [("profiles-steps", v) for v in steps] + [("powerflow-steps", v) for v in steps]
    points = []
    for curve, value in plan:
        if curves and curve not in curves:
            continue
        point = _run_point(curve, value)
        print(f"{curve:>22} {value:>7}: {point['seconds']:8.3f} s  {point['peak_mb']:8.1f} MB",
              flush=True)
        points.append(point)
    return points


LABELS = {
    "profiles-customers": f"load synthesis ({PROFILE_STEPS} steps)",
    "model-build-customers": "offer model build + hand-off (10 offers × 96 steps)",
    "profiles-steps": f"load synthesis ({STEP_CUSTOMERS:,} customers)",
    "powerflow-steps": "power flow (SimBench 1-MV-urban)",
}


def plot(points: list[dict], out_dir: Path) -> list[Path]:
    """One PNG per sweep axis: time (left) and peak memory (right), log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for axis, xlabel in (("customers", "customers"), ("steps", "time steps (15 min)")):
        curves = [c for c in LABELS if c.endswith(axis) and any(p["curve"] == c for p in points)]
        fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(11, 4.2))
        for curve in curves:
            pts = sorted((p for p in points if p["curve"] == curve), key=lambda p: p["value"])
            x = [p["value"] for p in pts]
            ax_time.plot(x, [p["seconds"] for p in pts], "o-", label=LABELS[curve])
            ax_mem.plot(x, [max(p["peak_mb"], 0.1) for p in pts], "o-", label=LABELS[curve])
        for ax, ylabel in ((ax_time, "wall time [s]"), (ax_mem, "peak memory growth [MB]")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
        ax_time.legend(fontsize=8)
        fig.suptitle(f"gridflex: cost versus {axis}")
        fig.tight_layout()
        path = out_dir / f"scale_{axis}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time and peak memory versus scale, to PNG.")
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--quick", action="store_true", help="Two points per curve (smoke run).")
    parser.add_argument("--optimizer-max", type=int, default=10_000,
                        help="Largest customer count of the model-build curve.")
    parser.add_argument("--curves", nargs="+", choices=sorted(LABELS), default=None,
                        help="Only these curves; earlier points of other curves in "
                             "scale.json are kept.")
    parser.add_argument("--point", nargs=2, metavar=("CURVE", "VALUE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.point:
        print(json.dumps(measure_point(args.point[0], int(args.point[1]))))
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    points = sweep(args.quick, args.optimizer_max, tuple(args.curves or ()))
    store = args.out_dir / "scale.json"
    if args.curves and store.is_file():
        points += [p for p in json.loads(store.read_text()) if p["curve"] not in args.curves]
    store.write_text(json.dumps(points, indent=2))
    for path in plot(points, args.out_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
