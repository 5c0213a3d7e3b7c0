"""Optimizer benchmark: Pyomo build + hand-off vs the same model built directly with highspy.

Run ``python -m benchmarks.bench_optimizer --sizes 1000,10000,100000`` (set
``OPENBLAS_NUM_THREADS=1``). For each size it builds one seeded synthetic problem
(`optimizer.synthetic`, 10 offers × 96 design steps by default) and measures, in one process:

* ``pyomo``: NumPy preparation + Pyomo model (`optimizer.model.build_model`), hand-off
  (`optimizer.handoff.to_highs`), LP-fix solve (`optimizer.solve`);
* ``direct``: the same NumPy preparation, the same rows assembled as scipy CSR and passed with
  `optimizer.handoff.pass_matrices` (the array form of `highspy.Highs.passModel`, as the Pyomo
  hand-off ends too) — the floor; the same LP-fix solve;
* ``lagrange`` / ``lagrange-direct``: Lagrange-fix (`optimizer.lagrange_fix`), which never
  builds the full model: NumPy preparation, the dual by column generation, then sub-MIPs built
  through Pyomo or directly (the same model both ways);
* ``cluster``: cluster mode end to end (`solve_offers(method="cluster")`).

It prints a Markdown table: times [s], matrix size (Lagrange-fix: its last sub-MIP), objective,
certified gap, and the ratio of Pyomo build + hand-off to direct build + hand-off (lp-fix: whole
model; Lagrange-fix: NumPy preparation + sub-MIPs, and the sub-MIP models alone).
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from types import SimpleNamespace

import highspy
import numpy as np
import scipy.sparse as sp

from optimizer.handoff import HighsModel, gc_paused, new_highs, pass_matrices, to_highs
from optimizer.model import build_model, cost_coefficients
from optimizer.pairs import PairData, build_pairs
from optimizer.problem import OfferProblem
from optimizer.solve import _solve_lp_fix, make_solution
from optimizer.synthetic import synthetic_problem
from scenarios.schema import SolverConfig


def direct_highs(
    problem: OfferProblem, threads: int = 1, peak_steps: np.ndarray | None = None,
    peak_cap_kw: float = np.inf,
) -> tuple[HighsModel, PairData]:
    """The model of `optimizer.model` assembled straight from the pair arrays (no Pyomo)."""
    pairs = build_pairs(problem, peak_steps)
    p, n = pairs.customer.size, pairs.n_customers
    peak = p
    ncol = p + 1
    blocks, lower, upper, labels = [], [], [], []
    one = sp.csr_array((np.ones(p), (pairs.customer, np.arange(p))), shape=(n, ncol))
    blocks.append(one)
    lower.append(pairs.counts)
    upper.append(pairs.counts)
    rows = pairs.peak_rows
    epi = sp.hstack([rows, sp.csr_array(-np.ones((rows.shape[0], 1)))], format="csr")
    blocks.append(epi)
    lower.append(np.full(rows.shape[0], -np.inf))
    upper.append(-pairs.base_kw[pairs.peak_steps])
    labels += [("peak", int(t)) for t in pairs.peak_steps]
    start = n + rows.shape[0]
    row_of: dict = {label: [start - rows.shape[0] + j] for j, label in enumerate(labels)}

    def single(name, coef, lo, hi):
        nonlocal start
        blocks.append(sp.csr_array(np.append(coef, 0.0)[None, :]))
        lower.append(np.array([lo]))
        upper.append(np.array([hi]))
        row_of[name] = [start]
        start += 1

    dearest = np.maximum.reduceat(pairs.incentive, pairs.ptr[:-1]).sum()
    if np.isfinite(problem.budget_eur) and dearest > problem.budget_eur:
        single("budget", pairs.incentive, -np.inf, problem.budget_eur)
    worst = np.minimum.reduceat(pairs.satisfaction, pairs.ptr[:-1]).sum()
    if worst < n * problem.satisfaction_floor_mean:
        single("satisfaction_mean", pairs.satisfaction, n * problem.satisfaction_floor_mean, np.inf)
    band = problem.revenue_band_eur
    if np.isfinite(band):
        hi = np.maximum.reduceat(pairs.revenue, pairs.ptr[:-1]).sum()
        lo = np.minimum.reduceat(pairs.revenue, pairs.ptr[:-1]).sum()
        if hi > band or lo < -band:
            single("revenue_up", pairs.revenue, -np.inf, band)
            single("revenue_down", pairs.revenue, -band, np.inf)
    for cap in pairs.capacity:
        blocks.append(sp.hstack([cap.matrix, sp.csr_array((cap.matrix.shape[0], 1))], format="csr"))
        lower.append(cap.lower)
        upper.append(cap.upper)
        for j in range(cap.step.size):
            row_of.setdefault((cap.family, int(cap.element[j]), int(cap.step[j])), []).append(start + j)
        start += cap.step.size
    A = sp.vstack(blocks, format="csc")
    n_obj = n
    value = problem.peak_value_eur_per_kw
    cost = np.append(
        cost_coefficients(problem, pairs)
        - problem.satisfaction_value_eur * pairs.satisfaction / n_obj,
        value,
    )
    h = new_highs()
    h.setOptionValue("threads", threads)
    pass_matrices(h, A, cost, -value * pairs.base_peak_kw,
                  np.append(np.zeros(p), pairs.peak_lower_kw), np.append(np.ones(p), peak_cap_kw),
                  np.concatenate(lower), np.concatenate(upper), np.arange(ncol) < p)
    hm = HighsModel(
        highs=h, x_col=np.arange(p), peak_col=peak, slack_col={}, row_of=row_of, sign=-1.0,
        n_rows=A.shape[0], n_cols=ncol, nnz=int(A.nnz), integer_cols=np.arange(p),
    )
    return hm, pairs


def direct_sub_model(problem: OfferProblem, peak_steps: np.ndarray, threads: int,
                     peak_cap_kw: float = np.inf):
    """Lagrange-fix's sub-MIP builder, direct: the same model as `pyomo_sub_model`, no Pyomo."""
    t0 = time.perf_counter()
    hm, pairs = direct_highs(problem, threads, peak_steps, peak_cap_kw)
    return hm, SimpleNamespace(pair_data=pairs), time.perf_counter() - t0, 0.0


def _run_lagrange_fix(problem, config, builder):
    """Lagrange-fix with the given sub-MIP builder (`optimizer.solve` wiring, benchmark side)."""
    from optimizer.lagrange_fix import lagrange_fix

    with gc_paused():
        t0 = time.perf_counter()
        choice, bound, status, stats = lagrange_fix(problem, config, t0 + config.time_limit_s,
                                                    builder=builder)
        total = time.perf_counter() - t0
    build_s = stats.prep_s + stats.sub_build_s
    sizes = SimpleNamespace(n_cols=stats.sub_cols, n_rows=stats.sub_rows, nnz=stats.sub_nnz)
    solution = make_solution(problem, choice, bound, status, "lagrange-fix", build_s=build_s,
                             handoff_s=stats.sub_handoff_s,
                             solve_s=total - build_s - stats.sub_handoff_s, hm=sizes,
                             peak_rows=stats.peak_rows, fractional=0)
    return solution, stats.sub_build_s + stats.sub_handoff_s


def build_direct_highspy(problem: OfferProblem) -> HighsModel:
    """The floor for `benchmarks/test_bench_model_build.py`: the model loaded in HiGHS."""
    return direct_highs(problem)[0]


def _with_model_s(result):
    return result if isinstance(result, str) else (result, result.build_s + result.handoff_s)


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _run_lp_fix(problem, config, build):
    """Build (timed by ``build``), then LP-fix; return an OfferSolution or a failure string."""
    with gc_paused():
        hm, carrier, build_s, handoff_s = build()
        t0 = time.perf_counter()
        choice, bound, status, frac = _solve_lp_fix(hm, carrier, config, t0 + config.time_limit_s)
        solve_s = time.perf_counter() - t0
        if choice is None:
            return f"no assignment ({status}) after build {build_s:.2f} s + hand-off {handoff_s:.2f} s + solve {solve_s:.2f} s"
        return make_solution(problem, choice, bound, status, "lp-fix", build_s=build_s,
                             handoff_s=handoff_s, solve_s=solve_s, hm=hm,
                             peak_rows=len(carrier.S), fractional=frac)


def bench_path(path: str, problem: OfferProblem, config: SolverConfig, clusters: int):
    """One path on one problem: (OfferSolution, seconds of model build + hand-off alone or
    ``None``), or a string saying why there is none."""
    gc.collect()
    if path == "direct":
        def build():
            t0 = time.perf_counter()
            hm, pairs = direct_highs(problem, config.threads)
            return hm, SimpleNamespace(pair_data=pairs, S=pairs.peak_steps), time.perf_counter() - t0, 0.0
        return _with_model_s(_run_lp_fix(problem, config, build))
    if path in ("lagrange", "lagrange-direct"):
        from optimizer.lagrange_fix import pyomo_sub_model

        builder = pyomo_sub_model if path == "lagrange" else direct_sub_model
        try:
            return _run_lagrange_fix(problem, config, builder)
        except Exception as err:  # noqa: BLE001 - the benchmark reports every failure as a row
            return f"{type(err).__name__}: {err}"
    if path == "pyomo":
        def build():
            t0 = time.perf_counter()
            model = build_model(problem)
            t1 = time.perf_counter()
            hm = to_highs(model, threads=config.threads)
            return hm, model, t1 - t0, time.perf_counter() - t1
        return _with_model_s(_run_lp_fix(problem, config, build))
    from optimizer.cluster import solve_clustered

    try:
        return solve_clustered(problem, config, deadline=time.perf_counter() + config.time_limit_s,
                               clusters=clusters), None
    except Exception as err:  # noqa: BLE001 - the benchmark reports every failure as a row
        return f"{type(err).__name__}: {err}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="Customer counts, comma-separated.")
    parser.add_argument("--offers", type=int, default=10)
    parser.add_argument("--steps", type=int, default=96)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--mip-gap", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clusters", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1,
                        help="Runs per path; the row shown is the run of median build + hand-off "
                        "(small models take milliseconds on a shared, noisy machine).")
    parser.add_argument("--paths", default="direct,pyomo,lagrange-direct,lagrange,cluster",
                        help="Paths to run, in order: direct, pyomo (LP-fix on the full model, "
                        "direct highspy / Pyomo build), lagrange-direct, lagrange (Lagrange-fix, "
                        "sub-MIPs built direct / through Pyomo), cluster.")
    args = parser.parse_args(argv)
    config = SolverConfig(time_limit_s=args.time_limit, mip_gap=args.mip_gap, threads=args.threads)
    print(f"highspy {highspy.Highs().version()}  offers {args.offers}  steps {args.steps}  "
          f"mip_gap {args.mip_gap}  threads {args.threads}  time limit {args.time_limit:g} s")
    print("| customers | path | build s | hand-off s | solve s | total s | rows | nonzeros "
          "| objective EUR | gap | status | Pyomo÷direct build+hand-off | Pyomo÷direct model only |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    floors = {"pyomo": "direct", "lagrange": "lagrange-direct"}
    for n in (int(s) for s in args.sizes.split(",")):
        problem = synthetic_problem(n, args.offers, args.steps, seed=args.seed, trafos=3,
                                    budget_eur=20.0 * n, satisfaction_floor_mean=0.6)
        done: dict = {}
        for name in args.paths.split(","):
            runs = [bench_path(name, problem, config, args.clusters) for _ in range(args.repeat)]
            result = _median_run(runs)
            if isinstance(result, str):
                print(f"| {n} | {name} | {result} |", flush=True)
                continue
            s, model_s = result
            done[name] = result
            ratio = model_ratio = float("nan")
            if floors.get(name) in done:
                floor, floor_model_s = done[floors[name]]
                ratio = (s.build_s + s.handoff_s) / (floor.build_s + floor.handoff_s)
                model_ratio = model_s / floor_model_s
            total = s.build_s + s.handoff_s + s.solve_s
            print(f"| {n} | {name} | {s.build_s:.2f} | {s.handoff_s:.2f} | {s.solve_s:.2f} | "
                  f"{total:.2f} | {s.rows} | {s.nonzeros} | {s.objective:.2f} | {s.gap:.1e} | "
                  f"{s.status} | {_ratio(ratio)} | {_ratio(model_ratio)} |", flush=True)
        print(f"<!-- peak RSS so far {_peak_rss_gb():.2f} GB -->", flush=True)


def _median_run(runs: list):
    """The run of median build + hand-off time (a failure string if any run failed)."""
    failed = [r for r in runs if isinstance(r, str)]
    if failed:
        return failed[0]
    runs = sorted(runs, key=lambda r: r[0].build_s + r[0].handoff_s)
    return runs[len(runs) // 2]


def _ratio(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.1f}×"


if __name__ == "__main__":
    main()
