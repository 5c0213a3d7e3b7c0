"""Optimize + replay on the variants a planner makes of the bundled MV summer scenario.

Runs `scenarios.pipeline.run_scenario` once on a variant and prints the stage times, the peak
memory and the window KPIs as one JSON line (appended to ``--out``). The same script runs on
an older checkout (put it first on ``PYTHONPATH``) to compare the code before and after, in the
same session on the same machine:

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m benchmarks.bench_offers_window \\
        --variant urban-20k --out benchmarks/results/offers_window.jsonl

Variants (issue 16): ``urban-20k`` — ``simbench_mv_rural_summer`` on
``simbench:1-MV-urban--0-sw`` with 20,000 customers over 14 days; ``season-92`` — the same
scenario from 2016-06-01 over 92 days; ``bundled`` — the scenario as shipped.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import tempfile
import time
from pathlib import Path

VARIANTS: dict[str, dict[str, dict[str, object]]] = {
    "bundled": {},
    "urban-20k": {"network": {"source": "simbench:1-MV-urban--0-sw"},
                  "customers": {"count": 20000}, "time": {"days": 14}},
    "season-92": {"time": {"start": "2016-06-01", "days": 92}},
}


def variant_scenario(name: str, base: str = "simbench_mv_rural_summer"):
    """The bundled scenario ``base`` with the variant's fields replaced."""
    from scenarios.load import load_scenario

    scenario = load_scenario(base)
    data = scenario.model_dump()
    for section, fields in VARIANTS[name].items():
        data[section] = {**data[section], **fields}
    return type(scenario).model_validate(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="urban-20k")
    parser.add_argument("--base", default="simbench_mv_rural_summer")
    parser.add_argument("--label", default="", help="Free text stored with the figures.")
    parser.add_argument("--out", type=Path, default=None, help="Append the JSON line here.")
    args = parser.parse_args()

    from scenarios.pipeline import run_scenario

    scenario = variant_scenario(args.variant, args.base)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        result = run_scenario(scenario, Path(folder) / "out")
    timings = result.timings_s
    row = {
        "variant": args.variant,
        "label": args.label,
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, check=False).stdout.strip(),
        "optimize_plus_replay_s": timings.get("optimize", 0.0) + timings.get("evaluate", 0.0),
        "timings_s": timings,
        "wall_s": time.perf_counter() - started,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "kpis": result.kpis,
    }
    print(json.dumps(row))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
