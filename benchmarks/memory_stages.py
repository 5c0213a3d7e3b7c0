"""Where a `gridflex run` spends its memory: resident set per pipeline stage (issue 18).

Runs the bundled ``simbench_mv_rural_summer`` scenario (or another) with the customer count,
days and network overridden, through `scenarios.pipeline.run_scenario`, and at every stage
boundary (the pipeline's progress callback, plus the design, base-dataset and write calls)
records the process' resident set [MB] and its peak since the previous boundary, which is
reset at each boundary through ``/proc/self/clear_refs`` (Linux). The sizes of the feeder's big
arrays (profiles, power flow, population) are recorded once they exist. Nothing in the
pipeline is changed: the stage functions are wrapped from here.

Run one at a time (each is a heavy process), niced, under ``/usr/bin/time -v`` for the
whole-process peak::

    nice -n 10 /usr/bin/time -v python -m benchmarks.memory_stages --customers 3000 --days 92 \
        --source simbench:1-MV-rural--0-sw --out /tmp/mem3k92
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")  # resets VmHWM to the current resident set
        return True
    except OSError:
        return False


class StageMeter:
    """Resident set at each boundary and the peak within each stage [MB]."""

    def __init__(self, trace: bool = False) -> None:
        self.trace = trace
        if trace:
            tracemalloc.start(1)
        self.rows: list[dict] = []
        self.sizes_mb: dict[str, float] = {}
        self._stage = "start (imports, scenario)"
        self._t0 = time.perf_counter()
        self.peak_resets = _reset_peak()

    def boundary(self, next_stage: str) -> None:
        now = time.perf_counter()
        self.rows.append({"stage": self._stage, "seconds": round(now - self._t0, 2),
                          "peak_mb": round(_status_mb("VmHWM"), 1),
                          "rss_after_mb": round(_status_mb("VmRSS"), 1)})
        if self.trace:
            # Python-level (NumPy included) peak within the stage, and the lines holding the
            # most memory at its end (what the stage leaves alive for the next ones).
            current, peak = tracemalloc.get_traced_memory()
            top = tracemalloc.take_snapshot().statistics("lineno")[:6]
            self.rows[-1].update({
                "traced_peak_mb": round(peak / 2**20, 1),
                "traced_after_mb": round(current / 2**20, 1),
                "held_at_end": [f"{s.traceback[0].filename.rsplit('/', 2)[-2:]}:"
                                f"{s.traceback[0].lineno} {s.size / 2**20:.0f} MB" for s in top],
            })
            tracemalloc.reset_peak()
        _reset_peak()
        self._stage, self._t0 = next_stage, time.perf_counter()

    def wrap(self, module, name: str, stage: str, after: str | None = None):
        inner = getattr(module, name)

        def wrapped(*args, **kwargs):
            self.boundary(stage)
            value = inner(*args, **kwargs)
            if after is not None:
                self.boundary(after)
            return value

        setattr(module, name, wrapped)


def _nbytes_mb(obj) -> float:
    return round(float(getattr(obj, "nbytes", 0)) / 2**20, 1)


def run(customers: int, days: int, source: str | None, scenario_name: str, out: Path,
        trace: bool = False) -> dict:
    from scenarios import outputs, pipeline
    from scenarios import report as report_module
    from scenarios.load import load_scenario

    meter = StageMeter(trace)
    scenario = load_scenario(scenario_name)
    network = scenario.network if source is None else scenario.network.model_copy(
        update={"source": source})
    scenario = scenario.model_copy(update={
        "customers": scenario.customers.model_copy(update={"count": customers}),
        "time": scenario.time.model_copy(update={"days": days}),
        "network": network,
    })

    def design(scenario_, feeder):
        meter.sizes_mb.update({
            "profiles [customer, time]": _nbytes_mb(feeder.profiles),
            "power flow before [time, ...]": _nbytes_mb(feeder.before),
            "population [customer]": _nbytes_mb(feeder.population),
            "weather [time]": _nbytes_mb(feeder.weather),
        })
        for name, var in feeder.profiles.data_vars.items():
            meter.sizes_mb[f"profiles.{name} {var.dims} {var.dtype}"] = _nbytes_mb(var)
        return original_design(scenario_, feeder)

    original_design = pipeline.build_design
    pipeline.build_design = design
    meter.wrap(pipeline, "build_design", "design days", after="base dataset + KPIs before")
    meter.wrap(outputs, "write_result", "write result.nc")
    pipeline.write_result = outputs.write_result
    meter.wrap(report_module, "write_report", "write report (plots, html)", after="run.json")

    started = time.perf_counter()
    result = pipeline.run_scenario(scenario, out, progress=meter.boundary)
    meter.boundary("end")
    result_nc = out / "result.nc"
    return {
        "customers": customers, "days": days, "source": scenario.network.source,
        "steps": days * 24 * 60 // scenario.time.step_min,
        "wall_s": round(time.perf_counter() - started, 1),
        "pipeline_timings_s": {k: round(v, 2) for k, v in result.timings_s.items()},
        "peak_rss_mb": round(_status_mb("VmPeak"), 1) if not meter.peak_resets else None,
        "stages": meter.rows, "sizes_mb": meter.sizes_mb,
        "result_nc_mb": round(result_nc.stat().st_size / 2**20, 1) if result_nc.exists() else None,
        "peak_resets": meter.peak_resets,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=92)
    parser.add_argument("--source", default=None, help="network.source override")
    parser.add_argument("--scenario", default="simbench_mv_rural_summer")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--trace", action="store_true",
                        help="tracemalloc per stage (peak, and the lines holding most at its end); slow")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="gridflex-mem-"))
    figures = run(args.customers, args.days, args.source, args.scenario, out, args.trace)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    for row in figures["stages"]:
        print(f"{row['stage']:32s} {row['seconds']:8.1f} s  peak {row['peak_mb']:8.0f} MB  "
              f"after {row['rss_after_mb']:8.0f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
