"""Mutation campaign over the model modules (``make mutate``; not part of ``make test``).

Each model file is mutated by mutmut 3 on its own, against only the test files that cover it
(`TARGETS`), in a work copy of the project (``<work>/<file>/``) whose ``pyproject.toml``
narrows the shared ``[tool.mutmut]`` settings to that file. mutmut then maps every mutated
function to the tests that call it and runs only those per mutant, so a file takes minutes on
two cores, not the whole suite per mutant.

The report (``<work>/report.md`` and ``report.json``) gives, per file, the mutants killed,
survived, without a covering test, timed out, and the score
``(killed + timeout) / (all − skipped)``; every surviving mutant is listed with its diff, to be
killed by a new test or judged equivalent in ``equivalent.toml`` (with the reason), which
leaves it out of the adjusted score. The campaign exits 1 when a file's adjusted score is
below `MIN_SCORE`.

Decorated functions (the Numba kernels) are never mutated by mutmut 3; their twins in
``tests/reference/`` pin them instead.

Usage::

    python -m tests.mutation.campaign                       # every file of TARGETS
    python -m tests.mutation.campaign sim/baseline.py ...   # some files
"""

from __future__ import annotations

import argparse
import ast
import difflib
import glob
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sim", "customers", "optimizer", "scenarios")

#: Model file → the test files that cover it (globs; a pattern matching nothing is left out).
#: Not listed: the Numba kernels (sim/kernels.py, sim/pf_kernels.py, sim/pf_simd.py,
#: optimizer/price_kernel.py: decorated, never mutated; pinned by their twins), the synthetic
#: test problems (optimizer/synthetic.py) and sim/dataset.py (stage checks).
TARGETS: dict[str, list[str]] = {
    "sim/baseline.py": ["tests/sim/test_baseline*.py"],
    "sim/calendar.py": ["tests/sim/test_calendar.py"],
    "sim/meter_files.py": ["tests/sim/test_meter_files.py"],
    "sim/forecast.py": ["tests/sim/test_forecast.py", "tests/scenarios/test_design_days.py"],
    "sim/network.py": ["tests/sim/test_network.py"],
    "sim/powerflow.py": ["tests/sim/test_powerflow.py"],
    "sim/profiles.py": ["tests/sim/test_profiles.py", "tests/sim/test_kernels.py"],
    "sim/quality.py": ["tests/sim/test_quality*.py"],
    "sim/shapes.py": ["tests/sim/test_shapes.py"],
    "sim/topology.py": ["tests/sim/test_topology.py"],
    "sim/weather.py": ["tests/sim/test_weather.py"],
    "customers/calibration.py": ["tests/customers/test_calibration.py"],
    "customers/credit_book.py": ["tests/scenarios/test_credit_book.py"],
    "customers/credit.py": ["tests/customers/test_credit.py"],
    "customers/io.py": ["tests/customers/test_io.py"],
    "customers/payment_history.py": ["tests/customers/test_credit.py"],
    "customers/population.py": ["tests/customers/test_population.py"],
    "customers/response.py": ["tests/customers/test_response.py"],
    "customers/response_fit.py": ["tests/scenarios/test_tou_fit.py"],
    "customers/satisfaction.py": ["tests/customers/test_satisfaction.py"],
    "customers/summary.py": ["tests/customers/test_summary.py"],
    "optimizer/assignment.py": ["tests/optimizer/test_solve.py"],
    "optimizer/cluster.py": ["tests/optimizer/test_cluster.py"],
    "optimizer/handoff.py": ["tests/optimizer/test_handoff.py"],
    "optimizer/infeasibility.py": ["tests/optimizer/test_infeasibility.py"],
    "optimizer/lagrange_dual.py": ["tests/optimizer/test_lagrange_fix.py"],
    "optimizer/lagrange_fix.py": ["tests/optimizer/test_lagrange_fix.py"],
    "optimizer/lagrangian.py": ["tests/optimizer/test_lagrangian.py"],
    "optimizer/model.py": ["tests/optimizer/test_model.py", "tests/optimizer/test_handoff.py"],
    "optimizer/offers.py": ["tests/optimizer/test_offers.py"],
    "optimizer/pairs.py": ["tests/optimizer/test_model.py"],
    "optimizer/pareto.py": ["tests/optimizer/test_pareto.py"],
    "optimizer/problem.py": ["tests/optimizer/test_model.py", "tests/optimizer/test_solve.py"],
    "optimizer/solve.py": ["tests/optimizer/test_solve.py"],
    "scenarios/evaluation.py": ["tests/scenarios/test_evaluation*.py",
                                "tests/scenarios/test_pipeline.py"],
}
#: A score below this fails the campaign (issue 22).
MIN_SCORE = 0.80
#: Surviving mutants judged equivalent, with the reason (file → mutant → reason).
EQUIVALENT = Path(__file__).with_name("equivalent.toml")
#: Statuses (mutmut's names) that count as a detected mutant.
DETECTED = ("killed", "timeout", "caught by type check", "segfault")


def _toml_value(value) -> str:
    # Strings, booleans, numbers and lists of them: JSON spells them as TOML does.
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def _work_copy(target: str, tests: list[str], work: Path) -> None:
    """A copy of the packages and tests with a pyproject narrowed to ``target``."""
    if work.exists():
        shutil.rmtree(work)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc")
    for name in (*PACKAGES, "tests"):
        shutil.copytree(ROOT / name, work / name, ignore=ignore)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pytest_options = project["tool"]["pytest"]["ini_options"]
    mutmut = dict(project["tool"]["mutmut"])
    mutmut["only_mutate"] = [target]
    mutmut["pytest_add_cli_args_test_selection"] = tests
    lines = ["[tool.pytest.ini_options]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in pytest_options.items() if k != "testpaths"]
    lines += ["", "[tool.mutmut]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in mutmut.items()]
    (work / "pyproject.toml").write_text("\n".join(lines) + "\n")


def _statuses(work: Path, target: str) -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    meta = work / "mutants" / (target + ".meta")
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: status_by_exit_code[code] for name, code in codes.items()}


def _diffs(work: Path, target: str, names: list[str]) -> dict[str, str]:
    """The changed lines of each mutant against the original, read from mutmut's copy of the
    file (it holds every mutant as a function ``<name>__mutmut_<n>`` beside ``…_orig``)."""
    source = (work / "mutants" / target).read_text()
    lines = source.splitlines()
    # By line numbers: ast.get_source_segment re-scans the file per function (minutes here).
    functions = {node.name: "\n".join(lines[node.lineno - 1:node.end_lineno])
                 for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    out = {}
    for name in names:
        function = name.rsplit(".", 1)[-1]
        orig_name = function.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
        original = functions.get(orig_name, "")
        mutant = functions.get(function, "").replace(function, orig_name, 1)
        lines = difflib.unified_diff(original.splitlines(), mutant.splitlines(), lineterm="", n=0)
        out[name] = "\n".join(line for line in lines if line[:1] in "+-"
                              and not line.startswith(("+++", "---")))
    return out


def run_file(target: str, work_root: Path, max_children: int, timeout_s: float) -> dict:
    """Mutate one file; returns its row of the report."""
    tests = sorted({p for pattern in TARGETS[target] for p in glob.glob(pattern, root_dir=ROOT)})
    row: dict = {"file": target, "tests": tests}
    if not tests:
        row["error"] = "no test file found"
        return row
    work = work_root / target.replace("/", "__").removesuffix(".py")
    _work_copy(target, tests, work)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # mutmut forks a worker per mutant from a process that has run the tests once: Numba's
    # OpenMP layer refuses to run in such a child (it raises SIGTERM, "suspicious" mutants);
    # the workqueue layer starts its threads afresh in each process.
    env.update(OPENBLAS_NUM_THREADS="1", NUMBA_THREADING_LAYER="workqueue", MPLBACKEND="Agg")
    start = time.perf_counter()
    try:
        with open(work / "mutmut-run.log", "w") as log:
            run = subprocess.run([sys.executable, "-m", "mutmut", "run",
                                  "--max-children", str(max_children)], cwd=work, env=env,
                                 stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s,
                                 check=False)
        row["returncode"] = run.returncode
    except subprocess.TimeoutExpired:
        row["error"] = f"stopped after {timeout_s:.0f} s (partial results)"
    row["seconds"] = round(time.perf_counter() - start, 1)
    return summarise(row, work)


def summarise(row: dict, work: Path) -> dict:
    """Counts, scores and the undetected mutants of one file's finished (or stopped) run."""
    target = row["file"]
    statuses = _statuses(work, target)
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    considered = len(statuses) - counts.get("skipped", 0)
    detected = sum(counts.get(s, 0) for s in DETECTED)
    row.update(mutants=len(statuses), counts=counts,
               score=round(detected / considered, 4) if considered else None)
    surviving = _diffs(work, target, [name for name, status in sorted(statuses.items())
                                      if status not in (*DETECTED, "skipped")])
    judged = tomllib.loads(EQUIVALENT.read_text()).get(target, {}) if EQUIVALENT.exists() else {}
    row["equivalent"] = {name: {"diff": diff, "reason": judged[name]}
                         for name, diff in surviving.items() if name in judged}
    row["surviving"] = {name: diff for name, diff in surviving.items() if name not in judged}
    row["open"] = {}                     # status → count, of the undetected and not judged
    for name in row["surviving"]:
        row["open"][statuses[name]] = row["open"].get(statuses[name], 0) + 1
    rest = considered - len(row["equivalent"])
    row["score_without_equivalent"] = round(detected / rest, 4) if rest else None
    return row


def write_report(rows: list[dict], path: Path) -> None:
    path.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    out = ["# Mutation score per file", "",
           "Score: (killed + timeout) / (mutants − skipped); adjusted: the same without the "
           "surviving mutants judged equivalent (tests/mutation/equivalent.toml).", "",
           "| file | mutants | killed | survived | equivalent | no tests | timeout | other "
           "| score | adjusted | s |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        c = row.get("counts", {})
        other = sum(v for k, v in row.get("open", {}).items() if k not in ("survived", "no tests"))
        score, adjusted = (("—" if row.get(k) is None else f"{100 * row[k]:.1f} %")
                           for k in ("score", "score_without_equivalent"))
        equivalent = len(row.get("equivalent", {}))
        open_ = row.get("open", {})
        out.append(f"| {row['file']} | {row.get('mutants', 0)} | {c.get('killed', 0)} | "
                   f"{open_.get('survived', 0)} | {equivalent} | "
                   f"{open_.get('no tests', 0)} | {c.get('timeout', 0)} | {other} | {score} | "
                   f"{adjusted} | {row.get('seconds', '')} |")
    for row in rows:
        if row.get("error"):
            out += ["", f"**{row['file']}**: {row['error']}"]
        if row.get("surviving"):
            out += ["", f"## Not detected in {row['file']} (tests: {', '.join(row['tests'])})", ""]
            for name, diff in row["surviving"].items():
                out += [f"- `{name}`", "", "  ```diff", *("  " + line for line in
                                                        diff.splitlines()), "  ```"]
        if row.get("equivalent"):
            out += ["", f"## Judged equivalent in {row['file']}", ""]
            for name, item in row["equivalent"].items():
                out += [f"- `{name}`: {item['reason']}", "", "  ```diff",
                        *("  " + line for line in item["diff"].splitlines()), "  ```"]
    path.write_text("\n".join(out) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="model files (default: all of TARGETS)")
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "mutation")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="per file")
    parser.add_argument("--summarise-only", action="store_true",
                        help="rebuild the report from the work copies of an earlier run (e.g. "
                             "after judging mutants in equivalent.toml)")
    args = parser.parse_args(argv)
    files = args.files or list(TARGETS)
    unknown = [f for f in files if f not in TARGETS]
    if unknown:
        parser.error(f"not a mutation target: {', '.join(unknown)} (see TARGETS)")
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for target in files:
        work = args.work.resolve() / target.replace("/", "__").removesuffix(".py")
        if args.summarise_only:
            if not (work / "mutants").exists():
                continue
            rows.append(summarise({"file": target, "tests": TARGETS[target]}, work))
        else:
            rows.append(run_file(target, args.work.resolve(), args.max_children, args.timeout_s))
        write_report(rows, args.work / "report.md")
        row = rows[-1]
        score = "—" if row.get("score") is None else f"{100 * row['score']:.1f} %"
        print(f"{target}: {row.get('mutants', 0)} mutants, score {score}"
              f"{' (' + row['error'] + ')' if row.get('error') else ''}", flush=True)
    print(f"report: {args.work / 'report.md'}")
    low = [r["file"] for r in rows
           if r.get("score_without_equivalent") is None or r["score_without_equivalent"] < MIN_SCORE]
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
