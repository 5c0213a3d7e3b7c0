"""One scenario end to end: scenario → customers → sim → power flow → optimizer → evaluation → report.

Each stage hands the next an ``xarray.Dataset`` checked by `sim.dataset.validate`. Outputs are
written into a temporary sibling folder and moved into place at the end, so a failed run never
leaves a half-written result behind.
"""

from __future__ import annotations

import json
import time as wallclock
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from scenarios.errors import SolverError
from scenarios.evaluation import evaluate_offers
from scenarios.feeder import FeederModel, build_design, build_feeder
from scenarios.outputs import (
    KPI_UNITS,
    check_writable,
    check_writable_file,
    staged_output,
    write_result,
)
from scenarios.schema import Scenario
from sim.dataset import validate

Progress = Callable[[str], None]

KPI_LABELS: dict[str, str] = {
    "peak_kw_before": "feeder peak before [kW]",
    "peak_kw_after_expected": "feeder peak after, planned (window, objective.peak_quantile) [kW]",
    "peak_kw_after_planned_p10": "feeder peak after, planned P10 [kW]",
    "peak_kw_after_planned_p90": "feeder peak after, planned P90 [kW]",
    "peak_kw_after_p10": "feeder peak after, P10 of draws [kW]",
    "peak_kw_after_p50": "feeder peak after, P50 of draws [kW]",
    "peak_kw_after_p90": "feeder peak after, P90 of draws [kW]",
    "incentive_eur": "incentives paid, mean of draws [EUR]",
    "satisfaction_mean_before": "mean satisfaction before [-]",
    "satisfaction_mean_after": "mean satisfaction after [-]",
    "peak_cut_planned_kw": "window peak cut, planned [kW]",
    "peak_cut_realized_kw": "window peak cut, realized P50 [kW]",
    "peak_cut_realized_pct": "window peak cut, realized P50 [%]",
    "realized_share_of_planned_pct": "realized cut / planned cut [%]",
    "violations_before": "limit violations before, window [element-steps]",
    "violations_after": "limit violations after, window, P50 [element-steps]",
    "events_called_days": "days with an event called",
    "event_hit_rate_top_days": "share of the top days with an event called [-]",
    "planning_rounds": "optimizer rounds",
    "design_days": "design days (final round)",
    "nonconverged_steps": "power-flow steps not converged",
    "nonconverged_steps_after": "power-flow steps not converged after, worst draw",
}


@dataclass
class RunResult:
    """What `run_scenario` wrote and the headline KPIs."""

    out_dir: Path
    result_path: Path
    kpis: dict[str, float]
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def kpi_rows(self) -> list[tuple[str, str]]:
        rows = [
            (KPI_LABELS.get(name, name), _format(value))
            for name, value in self.kpis.items()
            if name in KPI_LABELS
        ]
        rows.append(("wall time [s]", f"{self.timings_s.get('total', float('nan')):.1f}"))
        return rows


def _format(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,d}"
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"


def run_scenario(
    scenario: Scenario,
    out_dir: Path,
    *,
    optimize: bool = True,
    export_model: Path | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Simulate, (optimize, evaluate) and write `result.nc`, plots and `report.html`.

    Parameters
    ----------
    scenario
        The validated scenario.
    out_dir
        Output folder; created, files in it replaced atomically at the end.
    optimize
        False for `gridflex simulate`: loads and power flow only.
    export_model
        Write the offer MILP to this MPS file as well.
    progress
        Called with the name of each stage as it starts.
    """
    check_writable(out_dir)
    if export_model is not None and optimize:
        check_writable_file(export_model, "--export-model", suffixes=(".mps", ".lp"))

    from scenarios.store_queries import RUN_OUTPUT

    RUN_OUTPUT.set(str(out_dir))  # lineage of data read from a store names where results go
    report = progress or (lambda stage: None)
    timings: dict[str, float] = {}
    started = wallclock.perf_counter()

    def timed(stage: str, key: str, fn, *args, **kwargs):
        report(stage)
        t0 = wallclock.perf_counter()
        value = fn(*args, **kwargs)
        timings[key] = wallclock.perf_counter() - t0
        return value

    feeder: FeederModel = timed("simulating feeder", "simulate", build_feeder, scenario, report)
    before = feeder.before
    design = build_design(scenario, feeder)
    result = _base_dataset(feeder, before)
    result.attrs["design_days"] = ", ".join(design.attrs["design_days"])
    for key in ("design_days_from", "forecast_mape_pct", "forecast_bias_pct",
                "forecast_peak_error_pct"):
        if key in design.attrs:
            result.attrs[key] = design.attrs[key]
    kpis = _kpis_before(feeder, before, result, design)

    if optimize:
        dispatch = timed("forecasting daily peaks for event calls", "dispatch", _dispatch,
                         scenario, feeder)
        plan = timed("optimizing offers", "optimize", _optimize, scenario, feeder, dispatch,
                     export_model, report)
        evaluated = timed(
            "replaying offers", "evaluate", evaluate_offers, scenario, feeder, plan
        )
        result = xr.merge([result, evaluated.dataset], compat="override", combine_attrs="override")
        kpis.update(evaluated.kpis)
        result.attrs["design_days"] = ", ".join(plan.design.attrs["design_days"])
        result.attrs["planning_rounds"] = json.dumps(plan.rounds)
        result.attrs["unfixed_violations"] = "; ".join(plan.unfixed)
        for name, value in _solution_attrs(plan.solution).items():
            result.attrs[f"solver_{name}"] = value
        if export_model is not None:
            result.attrs["exported_model"] = str(export_model)

    for name, value in kpis.items():
        result[name] = ((), float(value), {"units": KPI_UNITS.get(name, "1"),
                                            "long_name": KPI_LABELS.get(name, name)})
    validate(result, stage="result", allow_nan=_NAN_OK)

    report("writing outputs")
    with staged_output(out_dir) as staging:
        t0 = wallclock.perf_counter()
        write_result(result, staging / "result.nc")
        from scenarios.report import write_report

        write_report(scenario, result, kpis, staging)
        timings["write"] = wallclock.perf_counter() - t0
        timings["total"] = wallclock.perf_counter() - started
        (staging / "run.json").write_text(
            json.dumps({"scenario": scenario.name, "kpis": kpis, "timings_s": timings}, indent=2)
        )
    # A meter-driven run says how much of the feeder is measured (scenarios/meter_loads.py).
    notes = [str(feeder.population.attrs["customers_note"])] if (
        "customers_note" in feeder.population.attrs) else []
    return RunResult(out_dir=out_dir, result_path=out_dir / "result.nc", kpis=kpis,
                     timings_s=timings,
                     warnings=notes + _warnings(before, kpis) + model_notes(feeder.population)
                     + solver_notes(scenario, result.attrs))


def _warnings(before: xr.Dataset, kpis: dict[str, float]) -> list[str]:
    """What the planner must know about numbers that are left out."""
    failed = np.flatnonzero(~before["converged"].values.astype(bool))
    notes = []
    if len(failed):
        first = ", ".join(str(t)[:16] for t in before["time"].values[failed[:3]])
        notes.append(
            f"{len(failed)} of {before.sizes['time']} power-flow steps did not converge "
            f"(first: {first}); they are flagged in result.nc (converged) and left out of "
            "peaks and violations"
        )
    if kpis.get("nonconverged_steps_after", 0) > 0:
        notes.append(f"after the offers, up to {int(kpis['nonconverged_steps_after'])} steps "
                     "per draw did not converge")
    return notes


def model_notes(population: xr.Dataset) -> list[str]:
    """Fallbacks the customer models took on degenerate data (e.g. a credit book without
    arrears), said on the console and in the report."""
    return [str(population.attrs[key]) for key in ("credit_note",) if population.attrs.get(key)]


def solver_notes(scenario: Scenario, attrs: dict) -> list[str]:
    """A solve stopped by its time limit: the offers are the best found, not proven best."""
    status = str(attrs.get("solver_status", ""))
    if "time limit" not in status:
        return []
    gap = float(attrs.get("solver_mip_gap", float("nan")))
    reached = f"a gap of {gap:.2%}" if np.isfinite(gap) else "no gap bound"
    return [f"the solver stopped at its time limit (solver.time_limit_s = "
            f"{scenario.solver.time_limit_s:g} s) with {reached} against its bound; the offers "
            "are the best found, not proven optimal (raise solver.time_limit_s or "
            "solver.mip_gap)"]


_NAN_OK = ("vm_pu", "va_degree", "line_loading_pct", "trafo_loading_pct", "event_threshold_kw")


def _dispatch(scenario: Scenario, feeder: FeederModel):
    """Each contract's event days from the day-ahead forecast of the feeder's daily peak
    (`scenarios.dispatch`); None without curtailment contracts."""
    if not scenario.offers.curtailment:
        return None
    from scenarios.dispatch import dispatch_events, seasonal_reference, window_forecast
    from scenarios.forecasting import forecast_feeder

    # `forecast_feeder` rather than `forecast_window_peaks`: the same forecasts, plus those it
    # issued for the simulated history, which the paced threshold starts from.
    feeder_forecast = forecast_feeder(scenario, feeder, lead_days=1)
    table = feeder_forecast.table
    forecast = window_forecast(table, feeder_forecast.window)
    history = np.arange(feeder_forecast.window[0])
    issued = getattr(table, f"{scenario.dispatch.forecast}_kw")[0, history]
    reference = seasonal_reference(pd.DatetimeIndex(table.day[history]), issued,
                                   forecast.day[0], scenario.dispatch.season_days)
    return dispatch_events(forecast, list(scenario.offers.curtailment), scenario.dispatch,
                           history_kw=reference)


def _optimize(scenario: Scenario, feeder: FeederModel, dispatch, export_model: Path | None,
              progress: Progress):
    from scenarios.planning import plan_offers

    return plan_offers(scenario, feeder, dispatch, export_model, progress)


def _solution_attrs(solution) -> dict[str, float | str]:
    return {
        "status": str(solution.status),
        "objective_eur": float(solution.objective),
        "bound_eur": float(solution.bound),
        "mip_gap": float(solution.gap),
        "method": str(getattr(solution, "method", "")),
    }


def _base_dataset(feeder: FeederModel, before: xr.Dataset) -> xr.Dataset:
    """Inputs' key arrays and the before-case power flow on one set of labelled dims."""
    population = feeder.population
    keep = [name for name in population.data_vars if population[name].dims == ("customer",)]
    # `bus`, `load` and `tier` are dims of the result; per customer they become `customer_*`.
    customers = population[keep].rename(
        {"bus": "customer_bus", "load": "customer_load", "tier": "customer_tier"}
    )
    ds = xr.merge(
        [customers, feeder.profiles, feeder.weather, before],
        compat="override",
        combine_attrs="override",
    )
    ds.attrs.update(
        {
            "scenario": feeder.scenario.name,
            "network": feeder.scenario.network.source,
            "seed": int(feeder.scenario.seed),
            "step_h": float(feeder.step_h),
            "conventions": "gridflex stage contracts (docs/contracts.md)",
        }
    )
    return ds


def _kpis_before(feeder: FeederModel, before: xr.Dataset, ds: xr.Dataset,
                 design: xr.Dataset) -> dict[str, float]:
    """Peak, energy and violations of the simulated feeder, over the whole window."""
    from scenarios.evaluation import converged_peak_kw, count_violations

    converged = before["converged"].values.astype(bool)
    if not converged.any():
        # Nothing to measure a peak or a violation on: a planning error, not a result.
        raise SolverError(
            f"power flow: none of the {converged.size} steps converged; the simulated load is "
            f"beyond what network '{feeder.scenario.network.source}' can carry (check "
            "customers.count, customers.energy_scale and customers.size_to_network)"
        )
    head_kw = before["p_slack_mw"].values * 1000.0
    kpis = {
        "peak_kw_before": converged_peak_kw(before),
        "energy_kwh": float(np.sum(head_kw) * feeder.step_h),
        "violations_before": float(count_violations(before, feeder.scenario)),
        "nonconverged_steps": float(np.sum(~before["converged"].values.astype(bool))),
    }
    if "satisfaction_before" in ds:
        kpis["satisfaction_mean_before"] = float(ds["satisfaction_before"].mean())
    return kpis


def run_customers(scenario: Scenario, out_dir: Path, *, progress: Progress | None = None) -> str:
    """Build the population with credit and satisfaction; write customers.nc and CSV tables."""
    from customers.summary import summarize_customers, write_customer_outputs

    check_writable(out_dir)
    feeder = build_feeder(scenario, progress)
    with staged_output(out_dir) as staging:
        write_customer_outputs(feeder.population, staging, scenario)
    tables = summarize_customers(feeder.population, scenario)
    notes = "".join(f"\n\nnote: {note}" for note in model_notes(feeder.population))
    return "\n\n".join(f"{name}\n{_table_text(table)}" for name, table in tables.items()) + notes


def _table_text(table: object) -> str:
    if isinstance(table, pd.DataFrame | pd.Series):
        return table.to_string()
    return str(table)


def run_pareto(scenario: Scenario, out_dir: Path, *, against: str, points: int,
               progress: Progress | None = None) -> tuple[Path, pd.DataFrame]:
    """Sweep the ε-constraint Pareto front of peak reduction versus satisfaction or cost.

    Writes ``pareto_<against>.nc`` and ``.png`` and returns the PNG path and the front's table.
    """
    from optimizer.offers import build_offer_problem
    from optimizer.pareto import pareto_front, plot_pareto

    check_writable(out_dir)
    report = progress or (lambda stage: None)
    feeder = build_feeder(scenario, progress)
    design = build_design(scenario, feeder)
    problem = build_offer_problem(scenario, feeder.population, feeder.profiles, design)
    report(f"sweeping {points} Pareto points against {against}")
    front = pareto_front(problem, scenario.solver, against=against, points=points)
    with staged_output(out_dir) as staging:
        write_result(front, staging / f"pareto_{against}.nc")
        plot_pareto(front, staging / f"pareto_{against}.png")
    columns = [name for name in ("epsilon", "peak_reduction_kw", "satisfaction_mean", "cost_eur",
                                 "feasible") if name in front]
    table = front[columns].to_dataframe()
    return out_dir / f"pareto_{against}.png", table
