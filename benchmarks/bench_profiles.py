"""Load-kernel throughput: Numba (1 and 2 threads) next to its NumPy and pure-Python twins.

    python -m benchmarks.bench_profiles                 # 10,000 customers × 35,040 steps
    python -m benchmarks.bench_profiles --customers 1000 --steps 2880   # quick look

The full residential kernel (every customer with EV and heat pump, a third with PV) runs over
the year in chunks of ``--chunk`` customers, keeping only the feeder total (as
`sim.profiles.simulate_aggregate` does, with `sim.kernels.add_rows_by_group`), so memory stays
bounded; the Numba rows are the best of ``--repeats`` runs. The NumPy twin (vectorised over
customers, a Python loop over time) runs on ``--numpy-customers`` customers and the pure-Python
twin on ``--python-customers`` customers × ``--python-steps`` steps; their rates are per
customer-step, so they are comparable (the work per customer-step is the same). Reported: wall
time, customer-steps per second, CPU time per customer-step (all threads of the process; on a
shared machine the wall-clock rate mostly measures the other users, the CPU time much less),
the load average before and after, and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _inputs(customers: int, steps: int, seed: int = 42):
    from scenarios.schema import WeatherConfig
    from sim.calendar import day_index, hour_of_day
    from sim.profiles import customer_parameters, padded_base
    from sim.weather import build_weather
    from tests.sim.population_factory import make_population

    population = make_population(customers, seed=seed, ev_share=1.0, heat_pump_share=1.0,
                                 ac_share=0.0, pv_share=0.33, electric_heating_share=0.0)
    time_index = pd.date_range("2016-01-01", periods=steps, freq="15min")
    weather = build_weather(WeatherConfig(), time_index, seed=seed, base_dir=Path("."))
    weights, params = customer_parameters(population, seed)
    base, pad = padded_base(time_index, "DE", 0.25)
    return dict(seed=np.uint64(seed), ids=population["customer"].values.astype(np.int64),
                weights=weights, base=base, pad=pad,
                temperature=weather["temperature_c"].values, pv_factor=weather["pv_factor"].values,
                hour=hour_of_day(time_index), day=day_index(time_index), step_h=0.25, params=params)


def _args(a, sl=slice(None), steps=None):
    t = slice(None) if steps is None else slice(0, steps)
    return (a["seed"], a["ids"][sl], a["weights"][sl], a["base"], a["pad"], a["temperature"][t],
            a["pv_factor"][t], a["hour"][t], a["day"][t], a["step_h"], a["params"][sl])


def run_numba(a, chunk: int) -> tuple[float, np.ndarray]:
    """Kernel over all customers in chunks; returns (seconds, feeder total [kW])."""
    from sim import kernels

    n, steps = len(a["ids"]), len(a["temperature"])
    buffers = [np.empty((min(chunk, n), steps)) for _ in range(4)]
    for b in buffers:
        b.fill(0.0)  # first-touch page faults are the OS's cost, not the kernel's
    total = np.zeros((1, steps))
    feeder = np.zeros(min(chunk, n), dtype=np.int64)
    start_t = time.perf_counter()
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        out = [b[: stop - start] for b in buffers]
        kernels.simulate_customers(*_args(a, slice(start, stop)), *out)
        kernels.add_rows_by_group(feeder[: stop - start], out[0], total)
    return time.perf_counter() - start_t, total[0]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=35_040)
    parser.add_argument("--chunk", type=int, default=32,
                        help="customers per kernel call (32: the chunk's outputs stay in L3)")
    parser.add_argument("--repeats", type=int, default=3, help="Numba runs per thread count (best kept)")
    parser.add_argument("--numpy-customers", type=int, default=200)
    parser.add_argument("--python-customers", type=int, default=2)
    parser.add_argument("--python-steps", type=int, default=2_880)
    args = parser.parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numba

    from tests.reference.profiles import simulate_numpy, simulate_python

    a = _inputs(args.customers, args.steps)
    rss_inputs = _peak_rss_mb()
    warm = dict(a, ids=a["ids"][:2], weights=a["weights"][:2], params=a["params"][:2])
    run_numba(warm, 2)  # compile or load the cache outside the timing
    rows = []
    work = args.customers * args.steps
    totals = {}
    load_before = os.getloadavg()[0]
    for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
        numba.set_num_threads(threads)
        best = None
        for _ in range(args.repeats):
            cpu0 = time.process_time()
            seconds, totals[threads] = run_numba(a, args.chunk)
            cpu = time.process_time() - cpu0
            if best is None or seconds < best[0]:
                best = (seconds, cpu)
        seconds, cpu = best
        rows.append((f"numba, {threads} thread(s)", args.customers, args.steps, seconds,
                     work / seconds, cpu / work))
    identical = all(np.array_equal(totals[1], t) for t in totals.values())

    m = min(args.numpy_customers, args.customers)
    t0, cpu0 = time.perf_counter(), time.process_time()
    simulate_numpy(*_args(a, slice(0, m)))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rows.append(("numpy twin", m, args.steps, seconds, m * args.steps / seconds,
                 cpu / (m * args.steps)))

    p, s = min(args.python_customers, args.customers), min(args.python_steps, args.steps)
    t0, cpu0 = time.perf_counter(), time.process_time()
    simulate_python(*_args(a, slice(0, p), steps=s))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rows.append(("pure-Python twin", p, s, seconds, p * s / seconds, cpu / (p * s)))

    fastest = max(r[4] for r in rows)
    print(f"full residential kernel (EV + heat pump every customer, PV a third), 15-min steps, "
          f"chunk {args.chunk}")
    print(f"{'implementation':<24}{'customers':>10}{'steps':>8}{'seconds':>10}"
          f"{'M customer-steps/s':>20}{'slower':>9}{'CPU ns/customer-step':>22}")
    for name, c, s_, sec, rate, cpu in rows:
        print(f"{name:<24}{c:>10}{s_:>8}{sec:>10.2f}{rate / 1e6:>20.2f}{fastest / rate:>8.1f}x"
              f"{cpu * 1e9:>22.1f}")
    print(f"threads 1 vs 2 bitwise identical feeder total: {identical}")
    print(f"peak RSS: {_peak_rss_mb():.0f} MB (inputs alone {rss_inputs:.0f} MB; chunk buffers "
          f"{4 * args.chunk * args.steps * 8 / 1e6:.0f} MB; the full [customer, time] float64 "
          f"outputs would need {4 * work * 8 / 1e9:.1f} GB)")
    print(f"cpu count {os.cpu_count()}, 1-min load average {load_before:.1f} before the Numba runs, "
          f"{os.getloadavg()[0]:.1f} at the end (shared machine)")


if __name__ == "__main__":
    main()
