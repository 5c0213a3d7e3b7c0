"""The `gridflex` command line: parse, call one library function, map errors to exit codes.

Exit codes: 0 ok, 1 bad input, 2 usage, 3 infeasible or solver failure, 4 internal error.
Heavy libraries are imported inside the commands so that `gridflex --help` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer

app = typer.Typer(
    name="gridflex",
    help="Grid load simulation and demand-response offer optimization for distribution planners.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Interval meter data: screening.", no_args_is_help=True)
app.add_typer(data_app, name="data")

_state = {"debug": False}

ScenarioArg = Annotated[
    str, typer.Argument(help="Scenario TOML file, or the name of a bundled scenario.")
]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")
    ] = False,
) -> None:
    """Grid load simulation and demand-response offer optimization for distribution planners."""
    _state["debug"] = debug


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def _errors_to_exit_codes() -> Iterator[None]:
    """One line on stderr and the documented exit code instead of a traceback."""
    from scenarios.errors import GridflexError

    try:
        yield
    except GridflexError as error:
        if _state["debug"]:
            raise
        raise _fail(str(error), error.exit_code) from None
    except KeyboardInterrupt:
        raise _fail("interrupted", 130) from None
    except OSError as error:
        if _state["debug"]:
            raise
        raise _fail(f"{error.strerror or error} ({error.filename or 'I/O'})", 1) from None
    except MemoryError:
        raise _fail("out of memory; reduce customers.count or time.days", 1) from None
    except Exception as error:  # noqa: BLE001 — last line of defence: no traceback for users
        if _state["debug"]:
            raise
        raise _fail(
            f"internal error ({error.__class__.__name__}: {error}); rerun with --debug for details",
            4,
        ) from None


@contextmanager
def _naming_the_scenario(scenario: str) -> Iterator[None]:
    """Errors found while running a loaded scenario (its network, its country, limits that
    conflict) name the scenario file first, as errors found while loading it do."""
    from scenarios.errors import GridflexError
    from scenarios.load import resolve_scenario_path

    try:
        yield
    except GridflexError as error:
        source = str(resolve_scenario_path(scenario))
        if not str(error).startswith(source) and len(error.args) == 1:
            error.args = (f"{source}: {error}",)
        raise


@contextmanager
def _stage_progress(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A rich spinner naming the current pipeline stage (on stderr)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda stage: None
        return
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=None)
        yield lambda stage: progress.update(task, description=stage)


def _print_kpis(title: str, rows: list[tuple[str, str]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title))
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(escape(name), escape(value))
    Console().print(table)


@app.command()
def run(
    scenario: ScenarioArg,
    out: OutOption = Path("out"),
    export_model: Annotated[
        Path | None, typer.Option("--export-model", help="Also write the offer MILP to this MPS file.")
    ] = None,
) -> None:
    """Simulate, optimize and evaluate one scenario; write result.nc, plots and report.html."""
    _run_and_report(scenario, out, optimize=True, export_model=export_model)


@app.command()
def simulate(scenario: ScenarioArg, out: OutOption = Path("out")) -> None:
    """Simulate loads and power flow only (no offers); write result.nc, plots and report.html."""
    _run_and_report(scenario, out, optimize=False, export_model=None)


def _run_and_report(scenario: str, out: Path, *, optimize: bool, export_model: Path | None) -> None:
    with _errors_to_exit_codes():
        from scenarios.load import load_scenario
        from scenarios.pipeline import run_scenario

        loaded = load_scenario(scenario)
        with _naming_the_scenario(scenario), _stage_progress() as progress:
            result = run_scenario(
                loaded, out, optimize=optimize, export_model=export_model, progress=progress
            )
        _print_kpis(loaded.name, result.kpi_rows())
        for note in result.warnings:
            typer.echo(f"warning: {note}", err=True)
        typer.echo(f"wrote {result.out_dir}")


@app.command()
def check(scenario: ScenarioArg) -> None:
    """Validate a scenario file and print the resolved scenario as JSON (defaults filled in)."""
    with _errors_to_exit_codes():
        from scenarios.load import load_scenario

        loaded = load_scenario(scenario)
        typer.echo(loaded.model_dump_json(indent=2, exclude={"base_dir"}))
        typer.echo(f"{scenario}: valid", err=True)


@app.command("scenarios")
def list_scenarios() -> None:
    """List the bundled scenarios."""
    with _errors_to_exit_codes():
        from scenarios.load import bundled_scenarios, load_scenario

        for name, path in bundled_scenarios().items():
            loaded = load_scenario(path)
            typer.echo(f"{name:28s} {loaded.network.source:32s} {loaded.description}")


@app.command()
def customers(scenario: ScenarioArg, out: OutOption = Path("out")) -> None:
    """Build the customer population: credit tiers, warnings and satisfaction weights."""
    with _errors_to_exit_codes():
        from scenarios.load import load_scenario
        from scenarios.pipeline import run_customers

        loaded = load_scenario(scenario)
        with _naming_the_scenario(scenario), _stage_progress() as progress:
            summary = run_customers(loaded, out, progress=progress)
        typer.echo(summary)


@app.command()
def pareto(
    scenario: ScenarioArg,
    out: OutOption = Path("out"),
    against: Annotated[
        str, typer.Option(help="Trade peak reduction against 'satisfaction' or 'cost'.")
    ] = "satisfaction",
    points: Annotated[int, typer.Option(min=2, max=50, help="Points on the front.")] = 8,
) -> None:
    """Sweep the epsilon-constraint Pareto front of peak reduction versus satisfaction or cost."""
    if against not in ("satisfaction", "cost"):
        raise _fail("--against must be 'satisfaction' or 'cost'", 2)
    with _errors_to_exit_codes():
        from scenarios.load import load_scenario
        from scenarios.pipeline import run_pareto

        loaded = load_scenario(scenario)
        kind: Literal["satisfaction", "cost"] = "satisfaction" if against == "satisfaction" else "cost"
        with _naming_the_scenario(scenario), _stage_progress() as progress:
            path, table = run_pareto(loaded, out, against=kind, points=points, progress=progress)
        typer.echo(table.to_string())
        typer.echo(f"wrote {path}")


@app.command()
def batch(
    scenarios: Annotated[list[str], typer.Argument(help="Scenario files or bundled names.")],
    out: OutOption = Path("out"),
    workers: Annotated[int, typer.Option(min=1, max=256, help="Local Dask workers.")] = 2,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of an existing Dask scheduler (tcp://host:8786).")
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Comma-separated seeds: run every scenario once per seed.")
    ] = None,
) -> None:
    """Run many scenarios on Dask (local cluster by default); resume what is already done."""
    with _errors_to_exit_codes():
        from scenarios.batch import run_batch

        seed_list = _parse_seeds(seeds)
        report = run_batch(scenarios, out, workers=workers, scheduler=scheduler, seeds=seed_list)
        typer.echo(report.summary_text())
    if report.failed:
        raise typer.Exit(1)


def _parse_seeds(seeds: str | None) -> list[int] | None:
    from scenarios.errors import InputError

    if seeds is None:
        return None
    try:
        values = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--seeds: expected comma-separated integers, got '{seeds}'") from None
    if not values or any(v < 0 for v in values):
        raise InputError(f"--seeds: expected non-negative integers, got '{seeds}'")
    return values


StepMinOption = Annotated[
    int | None, typer.Option("--step-min", min=1, max=1440,
                             help="Interval of meters with a single reading [min] (each meter's "
                                  "own interval is otherwise inferred from its readings).")
]
TzOption = Annotated[
    str, typer.Option("--tz", help="Time zone of the meters' local clocks (IANA name).")
]
MaxRepairOption = Annotated[
    int, typer.Option("--max-repair-steps", min=0, help="Longest gap filled by interpolation [steps].")
]
MaxKwOption = Annotated[
    float, typer.Option("--max-kw", min=0.0, help="Largest plausible mean power of one meter [kW].")
]
SpikeLevelOption = Annotated[
    float, typer.Option("--spike-level", min=1.0,
                        help="Spike: above this multiple of the meter's 99.5th percentile ...")
]
SpikeRatioOption = Annotated[
    float, typer.Option("--spike-ratio", min=1.0, help="... and this multiple of both neighbours.")
]
StuckOption = Annotated[
    int, typer.Option("--stuck-steps", min=2, help="Identical non-zero readings in a row that mean stuck.")
]


def _screening(step_min: int | None, tz: str, max_repair_steps: int, max_kw: float,
               spike_level: float, spike_ratio: float, stuck_steps: int):
    from zoneinfo import available_timezones

    from scenarios.errors import InputError
    from sim.quality import ScreeningConfig

    if tz not in available_timezones():
        raise InputError(f"--tz: unknown time zone '{tz}' (an IANA name such as Europe/Berlin)")
    return ScreeningConfig(step_min=step_min, tz=tz, max_repair_steps=max_repair_steps,
                           max_kw=max_kw, spike_level=spike_level, spike_ratio=spike_ratio,
                           stuck_steps=stuck_steps)


@data_app.command("check")
def data_check(
    meter_file: Annotated[Path, typer.Argument(help="Interval meter data (customer_id,timestamp,kwh).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the per-customer screening report CSV here.")
    ] = None,
    step_min: StepMinOption = None,
    tz: TzOption = "Europe/Berlin",
    max_repair_steps: MaxRepairOption = 4,
    max_kw: MaxKwOption = 250.0,
    spike_level: SpikeLevelOption = 3.0,
    spike_ratio: SpikeRatioOption = 4.0,
    stuck_steps: StuckOption = 12,
) -> None:
    """Screen interval meter data: gaps, duplicates, negative values, spikes, stuck meters, DST faults."""
    with _errors_to_exit_codes():
        from scenarios.meter_data import check_meter_file

        config = _screening(step_min, tz, max_repair_steps, max_kw, spike_level, spike_ratio,
                            stuck_steps)
        typer.echo(check_meter_file(meter_file, out, config))


@app.command()
def calibrate(
    meter_file: Annotated[Path, typer.Argument(help="Interval meter data (customer_id,timestamp,kwh).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Customers CSV to write.")] = Path(
        "customers.csv"
    ),
    weather: Annotated[
        Path | None, typer.Option(help="Weather CSV (timestamp,temperature_c,ghi_w_m2) of the period.")
    ] = None,
    bus: Annotated[int | None, typer.Option(help="Bus of every customer.")] = None,
    buses: Annotated[
        Path | None, typer.Option(help="CSV customer_id,bus giving each customer's bus.")
    ] = None,
    step_min: StepMinOption = None,
    tz: TzOption = "Europe/Berlin",
    max_repair_steps: MaxRepairOption = 4,
    max_kw: MaxKwOption = 250.0,
    spike_level: SpikeLevelOption = 3.0,
    spike_ratio: SpikeRatioOption = 4.0,
    stuck_steps: StuckOption = 12,
) -> None:
    """Fit per-customer load parameters from meter data and write a customers file."""
    with _errors_to_exit_codes():
        from scenarios.meter_data import calibrate_meter_file

        config = _screening(step_min, tz, max_repair_steps, max_kw, spike_level, spike_ratio,
                            stuck_steps)
        typer.echo(
            calibrate_meter_file(meter_file, out, weather_file=weather, bus=bus, buses_file=buses,
                                 config=config)
        )


@app.command("mv")
def measure_and_verify(
    meter_file: Annotated[Path, typer.Argument(help="Interval meter data (customer_id,timestamp,kwh).")],
    events: Annotated[Path, typer.Argument(help="Events CSV: date,start,end[,customer_id].")],
    out: OutOption = Path("mv"),
    weather: Annotated[
        Path | None, typer.Option(help="Weather CSV (timestamp,temperature_c,ghi_w_m2): adds the "
                                       "regression baseline.")
    ] = None,
    country: Annotated[str, typer.Option(help="Public holidays of this country (day types).")] = "DE",
    rebound_h: Annotated[
        float, typer.Option("--rebound-h", min=0.25, max=12.0,
                            help="Hours after an event counted as payback [h].")
    ] = 2.0,
    step_min: StepMinOption = None,
    tz: TzOption = "Europe/Berlin",
) -> None:
    """Delivered reduction of past events per meter by X-of-Y and regression baselines (CSV, plot);
    with contracted_kw in the events also the fitted response table (response.toml)."""
    with _errors_to_exit_codes():
        from scenarios.meter_data import mv_meter_file

        config = _screening(step_min, tz, 4, 250.0, 3.0, 4.0, 12)
        typer.echo(mv_meter_file(meter_file, events, out, weather_file=weather, config=config,
                                 country=country, rebound_h=rebound_h))


@app.command("tou-fit")
def tou_fit(
    meter_file: Annotated[Path, typer.Argument(help="Interval meter data before and after the switch.")],
    moved: Annotated[Path, typer.Argument(help="CSV customer_id of the customers who changed tariff "
                                               "(the other meters are the control group).")],
    scenario: Annotated[str, typer.Option(help="Scenario whose offers.tariffs name both tariffs.")],
    old: Annotated[str, typer.Option("--old", help="Tariff before the switch.")],
    new: Annotated[str, typer.Option("--new", help="Tariff after the switch.")],
    switch: Annotated[str, typer.Option(help="First day on the new tariff (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Response table (TOML) to write.")] = Path(
        "response_tou.toml"),
    tz: TzOption = "Europe/Berlin",
) -> None:
    """Fit TOU own/cross price elasticities from meter data before and after a tariff change."""
    with _errors_to_exit_codes():
        from scenarios.meter_data import tou_fit_meter_file

        config = _screening(None, tz, 4, 250.0, 3.0, 4.0, 12)
        typer.echo(tou_fit_meter_file(meter_file, moved, scenario, out, old=old, new=new,
                                      switch=switch, config=config))


ScorecardOutOption = Annotated[Path, typer.Option("--out", "-o", help="Scorecard JSON to write.")]
BootstrapSeedOption = Annotated[int, typer.Option(min=0, help="Seed of the bootstrap resamples.")]

credit_app = typer.Typer(help="Credit scoring on a utility's whole payment book.",
                         no_args_is_help=True)
app.add_typer(credit_app, name="credit")


@credit_app.command("fit")
def credit_fit(
    history: Annotated[Path, typer.Argument(help="Payment history CSV of the whole book "
                                                 "(customer_id,month,bill_eur,paid_eur,days_late).")],
    out: ScorecardOutOption = Path("scorecard.json"),
    seed: BootstrapSeedOption = 0,
) -> None:
    """Fit the scorecard on the whole book; validate it on the latest month (AUC, KS, Gini, calibration)."""
    with _errors_to_exit_codes():
        from scenarios.credit_fit import fit_credit_book_file

        typer.echo(fit_credit_book_file(history, out, seed=seed))


@app.command()
def forecast(
    source: Annotated[str, typer.Argument(
        help="Scenario TOML, bundled scenario name, or meter file (customer_id,timestamp,kwh).")],
    horizon: Annotated[str, typer.Option(help="Forecast horizon: 1d (day-ahead) or 7d.")] = "1d",
    out: OutOption = Path("out"),
    history_days: Annotated[
        int, typer.Option(help="Scenario: days simulated before the window to train on.")
    ] = 365,
    origin: Annotated[
        str | None, typer.Option(help="Meter file: first day forecast (default: last 7 days).")
    ] = None,
    weather: Annotated[
        Path | None, typer.Option(help="Meter file: weather CSV (timestamp,temperature_c,ghi_w_m2).")
    ] = None,
) -> None:
    """Forecast daily feeder peaks (P10/P50/P90, rolling origin); write forecast.nc, plot, metrics."""
    with _errors_to_exit_codes():
        from scenarios.forecast_command import run_forecast

        with _stage_progress() as progress:
            result = run_forecast(source, horizon, out, history_days=history_days, origin=origin,
                                  weather_file=weather, progress=progress)
        _print_forecast(result)
        typer.echo(f"wrote {result.out_dir}")


def _print_forecast(result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="daily-peak forecast")
    for column in ("lead [d]", "period", "days", "MAE [kW]", "naive MAE [kW]", "linear MAE [kW]",
                   "vs naive [%]", "P10-P90 cover [%]", "top-5 hit", "peak hour MAE [h]"):
        table.add_column(column, justify="right")
    for row in result.metrics.itertuples():
        table.add_row(str(row.lead_days), row.period, str(row.days), f"{row.mae_kw:,.1f}",
                      f"{row.naive_mae_kw:,.1f}", f"{row.linear_mae_kw:,.1f}",
                      f"{row.mae_reduction_vs_naive_pct:.1f}", f"{row.coverage_pct:.1f}",
                      f"{row.top_k_hit_rate:.2f}", f"{row.peak_hour_mae_h:.2f}")
    console = Console(width=max(Console().width, 132))
    console.print(table)
    for text, measured, ok in result.targets:
        console.print(f"{'met' if ok else 'NOT met'}: {text} ({measured})", markup=False)

# --- Data store (issue 23): import once, plan many times; see scenarios/store*.py -------------
store_app = typer.Typer(help="Customer and meter data store (DuckDB folder or postgresql:// URL).",
                        no_args_is_help=True)
app.add_typer(store_app, name="store")
StoreOption = Annotated[str, typer.Option(
    "--store", help="Store: a folder (DuckDB, created on first import) or postgresql://… URL.")]
CustomersOption = Annotated[
    str | None, typer.Option("--customers", help="Comma-separated customer IDs to read.")]
FeederOption = Annotated[
    str | None, typer.Option("--feeder", help="Read the register's customers on this feeder.")]
StartOption = Annotated[
    str | None, typer.Option("--start", help="First local time to read (YYYY-MM-DD[ HH:MM]).")]
EndOption = Annotated[
    str | None, typer.Option("--end", help="Read before this local time (YYYY-MM-DD[ HH:MM]).")]


def _ids(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _stamp(text: str | None, option: str):
    import pandas as pd

    from scenarios.errors import InputError

    if text is None:
        return None
    try:
        return pd.Timestamp(text)
    except ValueError:
        raise InputError(f"{option}: '{text}' is not a date (YYYY-MM-DD[ HH:MM])") from None


@store_app.command("import")
def store_import(
    kind: Annotated[str, typer.Argument(help="meter, register, payments or events.")],
    file: Annotated[Path, typer.Argument(help="The file to import (CSV; meter reads also Parquet).")],
    store: StoreOption = "store",
    personal: Annotated[str, typer.Option(
        help="Comma-separated register columns that are personal (kept in the store; name, "
             "address, email, phone, iban, account … always are).")] = "",
    tz: TzOption = "Europe/Berlin",
) -> None:
    """Screen a file and add it to the store in one transaction; unreadable rows are quarantined."""
    with _errors_to_exit_codes():
        from scenarios.store_imports import import_file

        typer.echo(import_file(store, kind, file, personal=tuple(_ids(personal) or ()), tz=tz))


@store_app.command("calibrate")
def store_calibrate(
    store: StoreOption = "store",
    out: Annotated[Path, typer.Option("--out", "-o", help="Customers CSV to write.")] = Path(
        "customers.csv"),
    customers: CustomersOption = None,
    feeder: FeederOption = None,
    start: StartOption = None,
    end: EndOption = None,
    weather: Annotated[Path | None, typer.Option(help="Weather CSV of the period.")] = None,
    bus: Annotated[int | None, typer.Option(help="Bus of every customer.")] = None,
    buses: Annotated[Path | None, typer.Option(help="CSV customer_id,bus.")] = None,
    tz: TzOption = "Europe/Berlin",
) -> None:
    """`gridflex calibrate` on meter reads selected from the store."""
    with _errors_to_exit_codes():
        from scenarios.store_runs import calibrate_from_store

        config = _screening(None, tz, 4, 250.0, 3.0, 4.0, 12)
        typer.echo(calibrate_from_store(
            store, out, customers=_ids(customers), feeder=feeder, start=_stamp(start, "--start"),
            end=_stamp(end, "--end"), weather_file=weather, bus=bus, buses_file=buses,
            config=config))


@store_app.command("mv")
def store_mv(
    store: StoreOption = "store",
    out: OutOption = Path("mv"),
    customers: CustomersOption = None,
    feeder: FeederOption = None,
    start: StartOption = None,
    end: EndOption = None,
    weather: Annotated[Path | None, typer.Option(help="Weather CSV of the period.")] = None,
    country: Annotated[str, typer.Option(help="Public holidays of this country.")] = "DE",
    tz: TzOption = "Europe/Berlin",
) -> None:
    """`gridflex mv` on meter reads and events held in the store."""
    with _errors_to_exit_codes():
        from scenarios.store_runs import mv_from_store

        config = _screening(None, tz, 4, 250.0, 3.0, 4.0, 12)
        typer.echo(mv_from_store(
            store, out, customers=_ids(customers), feeder=feeder, start=_stamp(start, "--start"),
            end=_stamp(end, "--end"), weather_file=weather, config=config, country=country))


@store_app.command("credit-fit")
def store_credit_fit(
    store: StoreOption = "store",
    out: ScorecardOutOption = Path("scorecard.json"),
    seed: BootstrapSeedOption = 0,
) -> None:
    """`gridflex credit fit` on the payment book held in the store."""
    with _errors_to_exit_codes():
        from scenarios.store_runs import credit_fit_from_store

        typer.echo(credit_fit_from_store(store, out, seed=seed))


@store_app.command("lineage")
def store_lineage(store: StoreOption = "store") -> None:
    """What each run read from the store (table, customers, time range, rows, hash) and its output."""
    with _errors_to_exit_codes():
        from scenarios.store_queries import lineage_text

        typer.echo(lineage_text(store))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
