"""Forecast benchmark: a feeder-year of history simulated and the daily-peak forecaster fit on it.

Phases timed in one process (wall clock, `time.perf_counter`), peak RSS from `getrusage`:

1. ``history`` — `scenarios.forecasting.forecast_inputs`: ``customers`` simulated over
   ``history_days`` (streamed 32 customers at a time onto the load elements), the AC power flow
   of the year, the weather;
2. ``forecast 1d`` / ``forecast 7d`` — `forecast_from_inputs` at leads 1 and 1–7: rolling origin
   over the evaluation period with weekly refits of the gradient-boosted model;
3. peer ``forecast_day_ahead`` — the step-level design-day forecaster (`sim.forecast`, 5 folds)
   on the same feeder-year series, as the reference the new forecaster is compared to.

Run (the machine is shared: report ratios, not absolute times)::

    PYTHONPATH=$PWD OPENBLAS_NUM_THREADS=1 python -m benchmarks.bench_forecast \
        --scenario simbench_mv_rural_summer --customers 20000 --history-days 365 \
        --json benchmarks/results/forecast.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import time
from pathlib import Path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(scenario_name: str, customers: int, history_days: int, window_days: int) -> dict:
    import pandas as pd

    from scenarios.feeder import build_feeder
    from scenarios.forecasting import forecast_from_inputs, forecast_inputs
    from scenarios.load import load_scenario
    from sim.forecast import forecast_day_ahead

    scenario = load_scenario(scenario_name)
    scenario = scenario.model_copy(update={
        "customers": scenario.customers.model_copy(update={"count": customers}),
        "time": scenario.time.model_copy(update={"days": window_days,
                                                 "design_days": min(window_days, 1)}),
    })
    figures: dict[str, float | str | int] = {
        "scenario": scenario_name, "customers": customers, "history_days": history_days,
        "window_days": window_days, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    t0 = time.perf_counter()
    feeder = build_feeder(scenario)
    figures["build_feeder_s"] = time.perf_counter() - t0
    figures["rss_after_feeder_mb"] = _rss_mb()
    t0 = time.perf_counter()
    inputs = forecast_inputs(scenario, feeder, history_days)
    figures["history_s"] = time.perf_counter() - t0
    figures["history_steps"] = int(len(inputs.head_kw))
    figures["rss_after_history_mb"] = _rss_mb()
    for lead_days in (1, 7):
        t0 = time.perf_counter()
        result = forecast_from_inputs(inputs, country=scenario.time.country, seed=scenario.seed,
                                      window_days=window_days, lead_days=lead_days)
        figures[f"forecast_{lead_days}d_s"] = time.perf_counter() - t0
        figures[f"forecast_{lead_days}d_days"] = int(len(result.evaluation))
    year = inputs.head_kw.iloc[: history_days * len(inputs.head_kw) // (history_days + window_days)]
    year = year.dropna()
    t0 = time.perf_counter()
    forecast_day_ahead(year, pd.Series(inputs.temperature_c[: len(year)], index=year.index),
                       country=scenario.time.country, seed=scenario.seed)
    figures["peer_forecast_day_ahead_s"] = time.perf_counter() - t0
    figures["ratio_forecast_1d_to_peer"] = figures["forecast_1d_s"] / figures["peer_forecast_day_ahead_s"]
    figures["peak_rss_mb"] = _rss_mb()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="simbench_mv_rural_summer")
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--history-days", type=int, default=365)
    parser.add_argument("--window-days", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    figures = run(args.scenario, args.customers, args.history_days, args.window_days)
    for key, value in figures.items():
        print(f"{key:32s} {value:.2f}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
