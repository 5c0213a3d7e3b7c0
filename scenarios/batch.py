"""Run many scenarios on Dask distributed, resumably: `gridflex batch`.

Each scenario file (or bundled name) expands into jobs — one per combination of its ``sweep``
and per seed (`scenarios.sweep`) — with a stable id ``<name-slug>-<8 hex>``. Every job runs the
full pipeline on a Dask worker process and lands in ``OUT/<id>/`` (``result.nc``, plots,
report; the pipeline writes them atomically). When a job succeeds, a marker ``OUT/<id>/done.json``
holding the scenario's content hash (`scenarios.load.scenario_hash`) and KPIs is written last,
atomically. A rerun skips every job whose marker matches its current hash and whose
``result.nc`` exists, and recomputes the others — so a batch killed midway finishes only the
rest, and a job whose scenario (or input file) changed is redone.

One failing job never stops the others: it is reported with its message and exit-code class
(1 bad input, 3 infeasible or solver failure, 4 internal error or lost worker). At the end,
``OUT/summary.csv`` and ``OUT/summary.nc`` combine the KPIs of every job along a ``scenario``
dim (written to a temporary file and renamed, so a reader never sees half a summary).

By default the jobs run on a `distributed.LocalCluster` of single-threaded worker processes;
``scheduler="tcp://host:8786"`` uses an existing cluster instead, whose workers must see ``OUT``
and the scenarios' input files at the same paths (a shared file system).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from scenarios.errors import GridflexError, InputError
from scenarios.load import load_scenario, scenario_hash
from scenarios.schema import Scenario
from scenarios.sweep import expand_sweep, slugify

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client, LocalCluster
    from rich.console import Console

MARKER = "done.json"
RESULT = "result.nc"
SUMMARY_CSV = "summary.csv"
SUMMARY_NC = "summary.nc"

# A job's function: run one scenario into a folder, return its KPIs.
ScenarioRunner = Callable[[Scenario, Path], Mapping[str, float]]
Status = Literal["done", "skipped", "failed"]

# Exit-code classes (as `gridflex run` would exit on that scenario alone).
EXIT_OK, EXIT_INPUT, EXIT_SOLVER, EXIT_INTERNAL = 0, 1, 3, 4


@dataclass(frozen=True)
class Job:
    """One scenario run of a batch."""

    id: str
    source: str  # the scenario file or bundled name as given
    scenario: Scenario
    values: dict[str, Any]  # swept field path → value (and "seed" when seeds were given)
    content_hash: str


@dataclass(frozen=True)
class JobOutcome:
    """What became of one job."""

    id: str
    source: str
    name: str
    status: Status
    exit_code: int
    message: str = ""
    kpis: dict[str, float] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    wall_s: float = 0.0  # time spent on this job in this batch run [s]


@dataclass(frozen=True)
class BatchReport:
    """All outcomes of one `run_batch` call, in the order the jobs were planned."""

    out: Path
    outcomes: list[JobOutcome]
    summary_csv: Path
    summary_nc: Path
    wall_s: float

    @property
    def failed(self) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def done(self) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.status == "done"]

    @property
    def skipped(self) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.status == "skipped"]

    def summary_text(self) -> str:
        """A short plain-text table: one row per job, failures with their message."""
        rows = [("id", "status", "peak before kW", "peak after (exp) kW", "peak after P50 kW")]
        for o in self.outcomes:
            rows.append(
                (
                    o.id,
                    o.status if o.status != "failed" else f"failed ({o.exit_code})",
                    _fmt(o.kpis.get("peak_kw_before")),
                    _fmt(o.kpis.get("peak_kw_after_expected")),
                    _fmt(o.kpis.get("peak_kw_after_p50")),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows
        ]
        lines.append(
            f"{len(self.outcomes)} jobs: {len(self.done)} done, {len(self.skipped)} already done "
            f"(skipped), {len(self.failed)} failed; {self.wall_s:.1f} s"
        )
        lines.extend(f"failed {o.id} (exit {o.exit_code}): {o.message}" for o in self.failed)
        lines.append(f"wrote {self.summary_csv} and {self.summary_nc}")
        return "\n".join(lines)


def run_batch(
    scenarios: list[str],
    out: Path,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    seeds: list[int] | None = None,
    progress: bool = True,
    optimize: bool = True,
    runner: ScenarioRunner | None = None,
) -> BatchReport:
    """Run every scenario × sweep combination × seed on Dask; skip what is already done.

    Parameters
    ----------
    scenarios
        Scenario files or bundled scenario names.
    out
        Output folder; each job writes ``out/<id>/``; the summaries go to ``out/``.
    workers
        Worker processes of the local cluster (one thread each); ignored with ``scheduler``.
    scheduler
        Address of an existing Dask scheduler (``tcp://host:8786``).
    seeds
        Run each combination once per seed (replacing the scenario's seed).
    progress
        Show a progress bar and one status line per job on stderr.
    optimize
        Optimize offers (``False``: simulate only, like `gridflex simulate`).
    runner
        The function each job runs (default: `scenarios.pipeline.run_scenario`, returning its
        KPIs). It must be importable (or picklable by value) on the workers.

    Returns
    -------
    BatchReport
        Outcomes in plan order; ``report.failed`` lists the jobs that failed.

    Raises
    ------
    InputError
        The output folder cannot be created or written, or the scheduler cannot be reached.
        Bad scenario files do not raise: they are reported as failed jobs.
    """
    started = time.perf_counter()
    out = Path(out).absolute()
    created = not out.exists()
    _prepare_out(out)
    try:
        return _run_planned(
            scenarios, out, started, workers=workers, scheduler=scheduler, seeds=seeds,
            progress=progress, run=runner or functools.partial(_pipeline_runner, optimize=optimize),
        )
    except BaseException:
        # No empty output folder left behind when nothing could be run (e.g. no scheduler).
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _run_planned(
    scenarios: list[str],
    out: Path,
    started: float,
    *,
    workers: int,
    scheduler: str | None,
    seeds: list[int] | None,
    progress: bool,
    run: ScenarioRunner,
) -> BatchReport:
    console = _stderr_console()

    jobs, outcomes = plan_jobs(scenarios, seeds)
    pending: list[Job] = []
    for job in jobs:
        kpis = completed_kpis(out / job.id, job.content_hash)
        if kpis is None:
            pending.append(job)
            continue
        outcome = _outcome(job, "skipped", EXIT_OK, "already done", kpis=kpis)
        outcomes[job.id] = outcome
        if progress:
            _print_status(console, outcome)
    if progress:
        for outcome in outcomes.values():
            if outcome.status == "failed":
                _print_status(console, outcome)

    if pending:
        with _terminate_as_interrupt():
            finished = _execute(pending, out, run, workers, scheduler, progress, console)
        outcomes.update(finished)

    order = [job.id for job in jobs] + [k for k in outcomes if k not in {j.id for j in jobs}]
    ordered = [outcomes[k] for k in order]
    csv_path, nc_path = write_summaries(ordered, out)
    return BatchReport(out, ordered, csv_path, nc_path, time.perf_counter() - started)


def plan_jobs(
    scenarios: list[str], seeds: list[int] | None = None
) -> tuple[list[Job], dict[str, JobOutcome]]:
    """Load and expand every scenario; bad files become failed outcomes, not exceptions.

    Returns
    -------
    jobs
        One per scenario × sweep combination × seed, duplicates (the same file twice) removed.
    failures
        Job id → failed outcome for scenarios that cannot be loaded or expanded, or whose id
        collides with a different scenario's.
    """
    jobs: dict[str, Job] = {}
    failures: dict[str, JobOutcome] = {}
    for source in scenarios:
        try:
            scenario = load_scenario(source)
            points = expand_sweep(scenario, seeds=seeds, source=source)
        except InputError as error:
            stem = slugify(Path(source).stem)
            key = f"{stem}-invalid"
            if key in failures:
                key = f"{key}-{len(failures)}"
            failures[key] = JobOutcome(key, source, stem, "failed", EXIT_INPUT, str(error))
            continue
        for point in points:
            job = Job(point.id, source, point.scenario, point.values, scenario_hash(point.scenario))
            other = jobs.get(job.id)
            if other is None:
                jobs[job.id] = job
            elif other.content_hash != job.content_hash:
                failures[f"{job.id}-clash"] = _outcome(
                    job, "failed", EXIT_INPUT,
                    f"{source}: name '{scenario.name}' is also used by {other.source} with "
                    "different content; give each scenario its own name",
                )
    return list(jobs.values()), failures


def completed_kpis(job_dir: Path, content_hash: str) -> dict[str, float] | None:
    """The KPIs of a finished job whose marker matches ``content_hash``, else ``None``."""
    try:
        marker = json.loads((job_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("content_hash") != content_hash:
        return None
    if not (job_dir / RESULT).is_file():
        return None
    kpis = marker.get("kpis")
    if not isinstance(kpis, dict):
        return None
    return {str(k): float(v) for k, v in kpis.items()}


def run_job(job: Job, out: Path, runner: ScenarioRunner) -> JobOutcome:
    """Run one job on a worker: the pipeline, then the done marker (written last).

    Every exception becomes a failed outcome with its exit-code class, so that one bad
    scenario never takes the batch down.
    """
    job_dir = out / job.id
    started = time.perf_counter()
    # A stale marker must not survive a rerun that fails or is killed halfway.
    (job_dir / MARKER).unlink(missing_ok=True)
    try:
        kpis = {str(k): float(v) for k, v in runner(job.scenario, job_dir).items()}
        _write_marker(job, job_dir, kpis, time.perf_counter() - started)
    except GridflexError as error:
        return _outcome(job, "failed", error.exit_code, str(error), started=started)
    except MemoryError:
        return _outcome(job, "failed", EXIT_INPUT, "out of memory; reduce customers.count or time.days", started=started)
    except OSError as error:
        where = error.filename or "I/O"
        return _outcome(job, "failed", EXIT_INPUT, f"{error.strerror or error} ({where})", started=started)
    except Exception as error:  # noqa: BLE001 — one job's bug must not stop the batch
        return _outcome(
            job, "failed", EXIT_INTERNAL,
            f"internal error ({error.__class__.__name__}: {error})", started=started,
        )
    return _outcome(job, "done", EXIT_OK, kpis=kpis, started=started)


def write_summaries(outcomes: list[JobOutcome], out: Path) -> tuple[Path, Path]:
    """``summary.csv`` and ``summary.nc``: one row / ``scenario`` entry per job, atomically."""
    import numpy as np
    import pandas as pd
    import xarray as xr

    from sim.dataset import validate

    kpi_names = sorted({k for o in outcomes for k in o.kpis})
    swept = sorted({k for o in outcomes for k in o.values if k != "seed"})
    records = []
    for o in outcomes:
        row: dict[str, Any] = {
            "id": o.id, "name": o.name, "source": o.source, "status": o.status,
            "exit_code": o.exit_code, "seed": -1 if o.seed is None else o.seed,
            "message": o.message, "job_wall_s": o.wall_s,
        }
        row.update({f"sweep:{k}": o.values.get(k) for k in swept})
        row.update({k: o.kpis.get(k, np.nan) for k in kpi_names})
        records.append(row)
    columns = ["id", "name", "source", "status", "exit_code", "seed", "message", "job_wall_s"]
    table = pd.DataFrame.from_records(
        records, columns=columns + [f"sweep:{k}" for k in swept] + kpi_names
    )
    csv_path = out / SUMMARY_CSV
    _atomic_write(csv_path, lambda tmp: table.to_csv(tmp, index=False))

    ds = xr.Dataset(coords={"scenario": np.array([o.id for o in outcomes], dtype=str)})
    ds.attrs["title"] = "gridflex batch summary"
    for name, units, values in (
        ("name", "1", np.array([o.name for o in outcomes], dtype=str)),
        ("source", "1", np.array([o.source for o in outcomes], dtype=str)),
        ("status", "1", np.array([o.status for o in outcomes], dtype=str)),
        ("message", "1", np.array([o.message for o in outcomes], dtype=str)),
        ("exit_code", "1", np.array([o.exit_code for o in outcomes], dtype=np.int64)),
        ("seed", "1", table["seed"].to_numpy(dtype=np.int64)),
        ("job_wall_s", "s", np.array([o.wall_s for o in outcomes], dtype=np.float64)),
    ):
        ds[name] = ("scenario", values, {"units": units})
    for key in swept:
        column = table[f"sweep:{key}"]
        numeric = pd.to_numeric(column, errors="coerce")
        data = numeric.to_numpy(np.float64) if numeric.notna().all() else column.astype(str).to_numpy(str)
        ds[f"sweep:{key}"] = ("scenario", data, {"units": "1", "long_name": f"swept {key}"})
    for key in kpi_names:
        ds[key] = ("scenario", table[key].to_numpy(np.float64), {"units": kpi_units(key)})
    validate(ds, stage="batch summary", allow_nan=[*kpi_names, *(f"sweep:{k}" for k in swept)])
    nc_path = out / SUMMARY_NC
    _atomic_write(nc_path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))
    return csv_path, nc_path


def kpi_units(name: str) -> str:
    """Units of a KPI: the pipeline's table, else from the name's suffix (``_kw`` → kW)."""
    from scenarios.outputs import KPI_UNITS

    if name in KPI_UNITS:
        return KPI_UNITS[name]
    for marker, units in (("_kw", "kW"), ("_eur", "EUR"), ("_kwh", "kWh"), ("_pct", "%"), ("_s", "s")):
        if name.endswith(marker) or f"{marker}_" in name:
            return units
    return "1"


def _pipeline_runner(scenario: Scenario, out_dir: Path, *, optimize: bool) -> Mapping[str, float]:
    from scenarios.pipeline import run_scenario

    return run_scenario(scenario, out_dir, optimize=optimize).kpis


def _execute(
    jobs: list[Job],
    out: Path,
    runner: ScenarioRunner,
    workers: int,
    scheduler: str | None,
    progress: bool,
    console: Console,
) -> dict[str, JobOutcome]:
    from distributed import as_completed

    outcomes: dict[str, JobOutcome] = {}
    with _client(min(workers, len(jobs)), scheduler) as client, _progress_bar(
        console, len(jobs), progress
    ) as advance:
        token = uuid.uuid4().hex[:8]
        futures = {
            client.submit(run_job, job, out, runner, key=f"gridflex-{job.id}-{token}", pure=False): job
            for job in jobs
        }
        for future in as_completed(futures):
            job = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # noqa: BLE001 — a lost worker (KilledWorker, crash)
                outcome = _outcome(
                    job, "failed", EXIT_INTERNAL,
                    f"worker lost ({error.__class__.__name__}: {error})",
                )
            outcomes[job.id] = outcome
            advance()
            if progress:
                _print_status(console, outcome)
    return outcomes


@contextmanager
def _client(workers: int, scheduler: str | None) -> Iterator[Client]:
    from distributed import Client

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError, ValueError) as error:
            raise InputError(f"--scheduler: cannot connect to {scheduler} ({error})") from None
        with client:
            yield client
        return
    with local_cluster(workers) as cluster, Client(cluster) as client:
        yield client


@contextmanager
def local_cluster(workers: int) -> Iterator[LocalCluster]:
    """A `distributed.LocalCluster` of single-threaded worker processes, set up for batches.

    One job runs per worker at a time (the default saturation of 1.1 queues a second job on a
    busy worker, which then dies with it if the first crashes the process), and a job that has
    killed two workers is reported as failed instead of being retried on every worker in turn.
    """
    import dask
    from distributed import LocalCluster

    with dask.config.set(
        {"distributed.scheduler.worker-saturation": 1.0, "distributed.scheduler.allowed-failures": 1}
    ), LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: several batches may run side by side
        silence_logs=logging.CRITICAL,
    ) as cluster:
        yield cluster


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while jobs run, so the local cluster's worker processes are
    shut down instead of orphaned; finished jobs keep their markers for the rerun."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _progress_bar(console: Console, total: int, enabled: bool) -> Iterator[Callable[[], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not enabled or not console.is_terminal:
        yield lambda: None
        return
    with Progress(
        TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        task = bar.add_task("batch", total=total)
        yield lambda: bar.advance(task)


def _stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _print_status(console: Console, outcome: JobOutcome) -> None:
    from rich.markup import escape

    if outcome.status == "done":
        line = f"[green]done[/]    {outcome.id}  {outcome.wall_s:.1f} s"
    elif outcome.status == "skipped":
        line = f"[blue]skipped[/] {outcome.id}  already done"
    else:
        line = f"[red]failed[/]  {outcome.id}  exit {outcome.exit_code}: {escape(outcome.message)}"
    console.print(line, soft_wrap=True)


def _outcome(
    job: Job,
    status: Status,
    exit_code: int,
    message: str = "",
    *,
    kpis: dict[str, float] | None = None,
    started: float | None = None,
) -> JobOutcome:
    return JobOutcome(
        id=job.id,
        source=job.source,
        name=job.scenario.name,
        status=status,
        exit_code=exit_code,
        message=message,
        kpis=kpis or {},
        values=job.values,
        seed=job.scenario.seed,
        wall_s=0.0 if started is None else time.perf_counter() - started,
    )


def _write_marker(job: Job, job_dir: Path, kpis: dict[str, float], wall_s: float) -> None:
    from importlib.metadata import PackageNotFoundError, version

    if not (job_dir / RESULT).is_file():
        raise GridflexError(f"{job.id}: the pipeline returned without writing {job_dir / RESULT}")
    try:
        gridflex_version = version("gridflex")
    except PackageNotFoundError:  # running from a source tree without installation
        gridflex_version = "unknown"
    marker = {
        "id": job.id,
        "name": job.scenario.name,
        "source": job.source,
        "values": job.values,
        "content_hash": job.content_hash,
        "kpis": kpis,
        "wall_s": wall_s,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gridflex_version": gridflex_version,
    }
    text = json.dumps(marker, indent=2, default=str)
    _atomic_write(job_dir / MARKER, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); results are shared like every other output.
        from scenarios.outputs import default_file_mode

        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _prepare_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-", delete=True)
        probe.close()
    except OSError as error:
        raise InputError(
            f"--out: cannot write to output folder {out} ({error.strerror or error})"
        ) from None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
