"""Unbalanced time-series power flow benchmark: gridflex vs pandapower ``runpp_3ph``.

One year of 15-min steps on the IEEE European LV feeder (``pandapower.networks.
ieee_european_lv_asymmetric``: 907 buses, 55 single-phase homes, Dyn transformer). Every home's
per-phase power follows a seeded residential day shape with noise around its snapshot value
(`year_injections`); both engines get the same injections in the same process. pandapower
``runpp_3ph`` (its defaults, as a user runs it) is timed on ``--pp-steps`` steps and scaled
(marked ``*``). Each engine runs ``--repeats`` times, interleaved; its best run counts and the
median is printed next to it. Accuracy: the largest per-phase |Δvm| of each engine against
``runpp_3ph`` driven to its fixed point (restarted from its own results, see
`reference_vm_3ph`) on a sample of steps.

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.bench_powerflow3ph --steps 35040
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

PHASE_P = ["p_a_mw", "p_b_mw", "p_c_mw"]
PHASE_Q = ["q_a_mvar", "q_b_mvar", "q_c_mvar"]
VM_COLUMNS = ["vm_a_pu", "vm_b_pu", "vm_c_pu"]
_A = np.exp(2j * np.pi / 3)
T_ABC = np.array([[1, 1, 1], [1, _A**2, _A], [1, _A, _A**2]])  # abc = T_abc · 012


def year_injections(net, steps: int, seed: int = 2026):
    """``(p, q)`` ``[T, n_asymmetric_load, 3]`` [MW], [Mvar]: each home's snapshot power
    (or 1 kW on its phase where the snapshot is 0) × a day shape (night base, morning and evening
    peaks) × uniform noise 0.3–1.7; power factor of the snapshot (0.95 where 0)."""
    rng = np.random.default_rng(seed)
    load = net.asymmetric_load
    p0 = load[PHASE_P].to_numpy(float)
    q0 = load[PHASE_Q].to_numpy(float)
    phase = np.argmax(np.abs(p0), axis=1)
    peak = np.abs(p0).max(axis=1)
    peak = np.where(peak > 0, peak, 1e-3)
    ratio = np.divide(q0[np.arange(len(load)), phase], p0[np.arange(len(load)), phase],
                      out=np.full(len(load), np.tan(np.arccos(0.95))),
                      where=p0[np.arange(len(load)), phase] != 0)
    hour = (np.arange(steps) % 96) / 4.0
    shape = 0.25 + 0.35 * np.exp(-((hour - 7.5) / 1.5) ** 2) + 0.9 * np.exp(-((hour - 19.0) / 2.5) ** 2)
    noise = rng.uniform(0.3, 1.7, (steps, len(load)))
    p = np.zeros((steps, len(load), 3))
    p[:, np.arange(len(load)), phase] = shape[:, None] * noise * peak
    q = p * ratio[None, :, None]
    return p, q


def run_pandapower(net, p, q, *, tight: bool = False):
    """pandapower ``runpp_3ph`` per step → ``vm [T, 3, bus]`` in ``net.bus`` order."""
    from pandapower.pf.runpp_3ph import runpp_3ph

    step = copy.deepcopy(net)
    vm = np.empty((p.shape[0], 3, len(net.bus)))
    for t in range(p.shape[0]):
        step.asymmetric_load[PHASE_P] = p[t]
        step.asymmetric_load[PHASE_Q] = q[t]
        if tight:
            reference_vm_3ph(step)
        else:
            runpp_3ph(step)
        vm[t] = step.res_bus_3ph[VM_COLUMNS].to_numpy().T
    return vm


def reference_vm_3ph(net):
    """``runpp_3ph`` to its fixed point: its outer loop stops at a fixed 3e-8 p.u. mismatch, so it
    is restarted from its own results until no phase voltage moves by 1e-12 p.u."""
    from pandapower.pf.runpp_3ph import runpp_3ph

    runpp_3ph(net, tolerance_mva=1e-11)
    for _ in range(30):
        old = net.res_bus_3ph[VM_COLUMNS].to_numpy().copy()
        runpp_3ph(net, tolerance_mva=1e-11, init="results")
        if np.nanmax(np.abs(net.res_bus_3ph[VM_COLUMNS].to_numpy() - old)) < 1e-12:
            return net
    raise RuntimeError("runpp_3ph did not settle")


def bench_case(case: str, steps: int, pp_steps: int, repeats: int) -> list[dict]:
    import pandapower.networks as pn

    from sim.powerflow3ph import phase_injections, prepare_grid_3ph, run_timeseries_3ph, solve_3ph

    net = pn.ieee_european_lv_asymmetric(case)
    grid = prepare_grid_3ph(net)
    p, q = year_injections(net, steps)
    series = {"asymmetric_load_p_mw": p, "asymmetric_load_q_mvar": q}
    columns = phase_injections(grid, **series)
    check = sorted({0, 1, pp_steps // 2, 76, steps // 2, steps - 1} & set(range(steps)))
    ref = run_pandapower(net, p[check], q[check], tight=True)
    positions = {b: k for k, b in enumerate(net.bus.index)}
    cols = [positions[b] for b in grid.bus_index]

    def dvm_dataset(ds):  # run_timeseries_3ph Dataset
        vm = np.stack([ds[f"vm_{ph}_pu"].values[check] for ph in "abc"], axis=1)
        return float(np.nanmax(np.abs(vm - ref[:, :, cols])))

    def dvm_solve(result):
        from sim.powerflow3ph import sequence_voltages

        v = sequence_voltages(grid, result.v_kept[check])[:, :, grid.bus_internal]
        vm = np.abs(np.einsum("ps,tsb->tpb", T_ABC, v))  # phase voltages of the sample steps
        return float(np.nanmax(np.abs(vm - ref[:, :, cols])))

    def dvm_pandapower(vm):
        rows = [k for k, t in enumerate(check) if t < pp_steps]
        return float(np.nanmax(np.abs(vm[[check[k] for k in rows]] - ref[rows])))

    def clocked(fn, summary):
        """Timed call → (seconds, summary of its result): a year of results is not kept."""
        def run():
            start = time.perf_counter()
            value = fn()
            seconds = time.perf_counter() - start
            return seconds, summary(value)
        return run

    def stats(result):
        extra = {"dvm": (dvm_solve if hasattr(result, "v_kept") else dvm_dataset)(result)}
        extra["iters"] = float(np.mean(result.iterations))
        extra["converged"] = bool(np.all(result.converged))
        return extra

    engines = [
        ("gridflex solve_3ph (sequence voltages)", steps,
         clocked(lambda: solve_3ph(grid, *columns), stats),
         lambda: solve_3ph(grid, *(c[:16] for c in columns))),
        # float32 outputs: a year of 14 [time, bus|line] arrays on 907 buses is 1.7 GB so
        ("gridflex run_timeseries_3ph (all outputs, float32)", steps,
         clocked(lambda: run_timeseries_3ph(grid, dtype=np.float32, **series), stats),
         lambda: run_timeseries_3ph(grid, dtype=np.float32,
                                    **{k: v[:16] for k, v in series.items()})),
        ("pandapower runpp_3ph*", pp_steps,
         clocked(lambda: run_pandapower(net, p[:pp_steps], q[:pp_steps]),
                 lambda vm: {"dvm": dvm_pandapower(vm)}),
         lambda: run_pandapower(net, p[:2], q[:2])),
    ]
    best, times = {}, {}
    for engine in engines:
        engine[3]()
    for _ in range(repeats):
        for label, _, run, _ in engines:
            seconds, value = run()
            times.setdefault(label, []).append(seconds)
            if label not in best or seconds < best[label][0]:
                best[label] = (seconds, value)
    rows = []
    for label, n_timed, _, _ in engines:
        seconds, summary = best[label]
        rows.append({"case": case, "engine": label, "steps_s": n_timed / seconds,
                     "steps_s_median": n_timed / float(np.median(times[label])), **summary})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=35040)
    parser.add_argument("--cases", nargs="+", default=["on_peak_566"])
    parser.add_argument("--pp-steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import numba

    numba.set_num_threads(args.threads)
    print(f"steps={args.steps} pp_steps={args.pp_steps} threads={numba.get_num_threads()} "
          f"load={os.getloadavg()} OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    for case in args.cases:
        rows = bench_case(case, args.steps, args.pp_steps, args.repeats)
        pandapower = rows[-1]
        for row in rows:
            ratio = row["steps_s"] / pandapower["steps_s"]
            ratio_median = row["steps_s_median"] / pandapower["steps_s_median"]
            extra = (f"  mean iterations {row['iters']:.2f} converged {row['converged']}"
                     if "iters" in row else "")
            print(f"{row['case']:14s} {row['engine']:44s} {row['steps_s']:10.1f} steps/s "
                  f"(median {row['steps_s_median']:10.1f})  max|dvm| {row['dvm']:.1e}  "
                  f"x runpp_3ph {ratio:8.0f} (median {ratio_median:8.0f}){extra}", flush=True)
        year = args.steps / pandapower["steps_s"]
        print(f"{case}: a year of {args.steps} steps: pandapower ≈ {year / 3600:.2f} h, "
              f"gridflex run_timeseries_3ph {args.steps / rows[1]['steps_s']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
