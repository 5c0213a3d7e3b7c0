"""The regression gate: compare a benchmark run with `benchmarks/baseline.json`.

The compared figure of a case is gridflex's minimum time divided by the calibration workload
timed next to it in the same process (`benchmarks.calibration`), so machine speed cancels out.
The minimum is used because on a shared machine noise only ever adds time. A case fails when
``current ÷ baseline > 1 + tolerance`` (default 25 %). Peers are reported, never gated.

Usage::

    python -m benchmarks.gate check RESULTS.json [--baseline benchmarks/baseline.json]
    python -m benchmarks.gate record RESULTS.json [--baseline benchmarks/baseline.json]

``check`` exits 0 when every baseline case is within tolerance, 1 when any is slower (or
missing from the run), 2 on unusable input (different size or calibration version).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.report import GRIDFLEX, format_seconds, load_rows

DEFAULT_BASELINE = Path(__file__).with_name("baseline.json")
DEFAULT_TOLERANCE = 0.25
EXIT_OK, EXIT_REGRESSION, EXIT_UNUSABLE = 0, 1, 2


class UnusableResults(ValueError):
    """The run cannot be compared with the baseline (other size, calibration, or no cases)."""


@dataclass(frozen=True)
class Verdict:
    case: str
    baseline: float | None   # calibrated figure in the baseline
    current: float | None    # calibrated figure of this run
    current_median_s: float | None
    ok: bool
    reason: str

    @property
    def change(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current / self.baseline


def figures(results_path: Path, *more: Path) -> tuple[dict[str, dict], dict]:
    """Gated figures of gridflex's own rows in a run: ``{key: {calibrated, median_s, ...}}``.

    The key is the case name for the main ``gridflex`` row, ``"case [implementation]"`` for
    another gridflex entry point measured on the same case (e.g. the Dataset-producing wrapper).
    """
    rows, header = load_rows(results_path)
    for extra in more:  # re-measurements: keep each case's best figure
        rows += load_rows(extra)[0]
    cases: dict[str, dict] = {}
    for r in rows:
        key = gate_key(r.case, r.implementation)
        if r.peer or (key in cases and cases[key]["calibrated"] <= r.calibrated):
            continue
        cases[key] = {"calibrated": r.calibrated, "median_s": r.median_s, "min_s": r.min_s,
                      "calibration_s": r.calibration_s, "rounds": r.rounds, "test": r.test}
    return cases, header


def gate_key(case: str, implementation: str) -> str:
    return case if implementation == GRIDFLEX else f"{case} [{implementation}]"


def record_baseline(results_path: Path, baseline_path: Path = DEFAULT_BASELINE,
                    tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """Write the run's figures as the accepted baseline; returns what was written."""
    cases, header = figures(results_path)
    if not cases:
        raise UnusableResults(f"{results_path}: no gridflex benchmark in the run")
    if header["slowdown"] != 1:
        raise UnusableResults(f"{results_path}: recorded with a deliberate slowdown "
                              f"({header['slowdown']}); refusing to make it the baseline")
    baseline = {
        "about": "Accepted benchmark figures: minimum case time ÷ calibration workload time "
                 "(benchmarks/calibration.py) in the same process. Refresh with "
                 "`make bench-baseline`; checked by `make bench-check`.",
        "size": header["size"],
        "calibration_version": header["calibration_version"],
        "numba_threads": header["numba_threads"],
        "clock": header["clock"],
        "tolerance": tolerance,
        "recorded_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": header["machine"],
        "python": platform.python_version(),
        "cases": {name: {k: round(v, 6) if isinstance(v, float) else v for k, v in fig.items()}
                  for name, fig in sorted(cases.items())},
    }
    Path(baseline_path).write_text(json.dumps(baseline, indent=2) + "\n")
    return baseline


def check(results_path: Path, baseline_path: Path = DEFAULT_BASELINE,
          tolerance: float | None = None, allow_missing: bool = False,
          reruns: tuple[Path, ...] = ()) -> list[Verdict]:
    """Compare a run (and re-measurements of some of its cases) with the baseline; one verdict
    per baseline case (plus new cases, ok)."""
    baseline = json.loads(Path(baseline_path).read_text())
    cases, header = figures(results_path, *reruns)
    if not cases:
        raise UnusableResults(f"{results_path}: no gridflex benchmark in the run")
    for key in ("size", "calibration_version", "clock"):
        if header[key] != baseline.get(key):
            raise UnusableResults(f"{key} of the run ({header[key]}) differs from the "
                                  f"baseline's ({baseline.get(key)}): re-record the baseline")
    tolerance = baseline.get("tolerance", DEFAULT_TOLERANCE) if tolerance is None else tolerance
    verdicts = []
    for name, accepted in baseline["cases"].items():
        now = cases.get(name)
        if now is None:
            verdicts.append(Verdict(name, accepted["calibrated"], None, None, allow_missing,
                                    "not in this run"))
            continue
        change = now["calibrated"] / accepted["calibrated"]
        ok = change <= 1.0 + tolerance
        reason = (f"{(change - 1) * 100:+.0f}% " + ("within" if ok else "beyond")
                  + f" {tolerance * 100:.0f}%")
        verdicts.append(Verdict(name, accepted["calibrated"], now["calibrated"],
                                now["median_s"], ok, reason))
    for name in sorted(set(cases) - set(baseline["cases"])):
        verdicts.append(Verdict(name, None, cases[name]["calibrated"], cases[name]["median_s"],
                                True, "new case, not in the baseline"))
    return verdicts


def rerun_failed(results_path: Path, verdicts: list[Verdict]) -> Path | None:
    """Measure the failed cases once more, in a fresh pytest process with the run's settings.

    A real regression fails again; a co-tenant's burst on the shared machine rarely hits the
    same case twice. Returns the new results file (None when nothing can be re-run).
    """
    cases, header = figures(results_path)
    tests = sorted({cases[v.case]["test"] for v in verdicts
                    if not v.ok and v.case in cases and cases[v.case].get("test")})
    if not tests:
        return None
    out = Path(results_path).with_name(Path(results_path).stem + "-rerun.json")
    # The run's own conditions, including a deliberate slowdown (a slowed run stays slowed).
    env = {**os.environ, "GRIDFLEX_BENCH_SIZE": str(header["size"]),
           "NUMBA_NUM_THREADS": str(header["numba_threads"]),
           "GRIDFLEX_BENCH_SLOWDOWN": str(header["slowdown"])}
    command = [sys.executable, "-m", "pytest", *tests, "-p", "no:cacheprovider", "-q",
               f"--benchmark-timer={header['clock']}", f"--benchmark-json={out}"]
    print(f"bench gate: re-measuring {len(tests)} failed case(s) once")
    done = subprocess.run(command, env=env, check=False, capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        print(done.stdout[-3000:], done.stderr[-3000:])
        return None
    return out


def verdict_table(verdicts: list[Verdict]) -> str:
    lines = ["| case | baseline ÷ cal | now ÷ cal | change | median now | verdict |",
             "|---|---:|---:|---:|---:|---|"]
    for v in verdicts:
        lines.append(
            f"| {v.case} | {_num(v.baseline)} | {_num(v.current)} | "
            f"{'—' if v.change is None else f'{v.change:.2f}×'} | "
            f"{'—' if v.current_median_s is None else format_seconds(v.current_median_s)} | "
            f"{'ok' if v.ok else 'FAIL'}: {v.reason} |"
        )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark regression gate.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "record"):
        cmd = sub.add_parser(name)
        cmd.add_argument("results", type=Path, help="pytest-benchmark JSON of a harness run.")
        cmd.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE)
        cmd.add_argument("--tolerance", type=float, default=None,
                         help="Allowed slowdown as a fraction (default: the baseline's, 0.25).")
    sub.choices["check"].add_argument("--allow-missing", action="store_true",
                                      help="Do not fail on baseline cases absent from the run.")
    sub.choices["check"].add_argument("--rerun-failed", action="store_true",
                                      help="Re-measure failed cases once; keep each case's best.")
    args = parser.parse_args(argv)
    if not args.results.is_file():
        print(f"bench gate: {args.results}: no such file (run the benchmarks first)")
        return EXIT_UNUSABLE
    try:
        if args.command == "record":
            written = record_baseline(args.results, args.baseline,
                                      DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance)
            print(f"bench gate: recorded {len(written['cases'])} cases "
                  f"({written['size']} size) in {args.baseline}")
            return EXIT_OK
        if not args.baseline.is_file():
            print(f"bench gate: {args.baseline}: no baseline (run `make bench-baseline`)")
            return EXIT_UNUSABLE
        verdicts = check(args.results, args.baseline, args.tolerance, args.allow_missing)
        if args.rerun_failed and not all(v.ok for v in verdicts):
            print(verdict_table(verdicts))
            rerun = rerun_failed(args.results, verdicts)
            if rerun is not None:
                verdicts = check(args.results, args.baseline, args.tolerance,
                                 args.allow_missing, (rerun,))
    except UnusableResults as error:
        print(f"bench gate: {error}")
        return EXIT_UNUSABLE
    print(verdict_table(verdicts))
    failed = [v.case for v in verdicts if not v.ok]
    if failed:
        print(f"bench gate: FAILED — {len(failed)} case(s) slower than the baseline allows: "
              + ", ".join(failed))
        return EXIT_REGRESSION
    print(f"bench gate: passed ({len(verdicts)} cases)")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
