"""`gridflex batch`: sweep expansion, job planning, and real runs on a 2-worker LocalCluster.

The end-to-end batch test runs the real pipeline on tiny CIGRE LV scenarios (one of which
fails on purpose: an unknown pandapower network) through `gridflex batch`, then reruns to prove
resume (markers untouched) and that a job killed before its marker is redone. A second test
uses a small stand-in job function (pickled by value to the workers) for what the pipeline
cannot do cheaply on demand: an internal bug, an infeasible job, a job that kills its worker
process (slow), and an edited scenario that must be recomputed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from scenarios.batch import MARKER, completed_kpis, local_cluster, plan_jobs, run_batch
from scenarios.cli import app
from scenarios.errors import InfeasibleError, InputError
from scenarios.load import load_scenario, scenario_hash
from scenarios.schema import Scenario
from scenarios.sweep import MAX_SWEEP_POINTS, expand_sweep, parse_field_path

SWEEP = {"customers.ev_share": [0.1, 0.4]}


# --- sweep expansion -------------------------------------------------------------------------


def test_sweep_expands_every_combination_with_stable_ids(make_scenario):
    path = make_scenario(
        {"sweep": {"customers.ev_share": [0.1, 0.2, 0.3], "offers.curtailment[0].kw": [2.0, 4.0]}}
    )
    points = expand_sweep(load_scenario(path), seeds=[1, 2])
    assert len(points) == 3 * 2 * 2
    assert len({p.id for p in points}) == len(points)
    for p in points:
        assert p.scenario.customers.ev_share == p.values["customers.ev_share"]
        assert p.scenario.offers.curtailment[0].kw == p.values["offers.curtailment[0].kw"]
        assert p.scenario.seed == p.values["seed"]
        assert p.scenario.sweep == {}
        assert p.id.startswith("tiny-cigre-")
    again = expand_sweep(load_scenario(path), seeds=[1, 2])
    assert [p.id for p in again] == [p.id for p in points]


def test_sweep_ids_survive_edits_of_other_fields_but_hashes_do_not(make_scenario):
    first = expand_sweep(load_scenario(make_scenario({"sweep": SWEEP})))
    edited = expand_sweep(
        load_scenario(make_scenario({"sweep": SWEEP, "evaluation": {"draws": 3}}))
    )
    assert [p.id for p in first] == [p.id for p in edited]
    assert [scenario_hash(p.scenario) for p in first] != [scenario_hash(p.scenario) for p in edited]


def test_no_sweep_no_seeds_is_one_point_keeping_the_seed(tiny_scenario):
    scenario = load_scenario(tiny_scenario)
    (point,) = expand_sweep(scenario)
    assert point.scenario == scenario
    assert point.values == {}


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"customers.ev_shar": [0.1]}, "sweep.customers.ev_shar: unknown field 'ev_shar'"),
        ({"customers.ev_share": []}, "sweep.customers.ev_share: empty value list"),
        ({"customers.ev_share": [0.2, 1.5]}, "customers.ev_share=1.5]: customers.ev_share"),
        ({"offers.curtailment[5].kw": [1.0]}, "index [5] out of range (offers.curtailment has 1)"),
        ({"customers.mix": [0.5]}, "names a table, not a value"),
        ({"name": ["x"]}, "'name' cannot be swept"),
        ({"customers..count": [1]}, "is not a field path"),
    ],
)
def test_bad_sweep_is_caught_at_load_time(make_scenario, sweep, message):
    path = make_scenario({"sweep": sweep})
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_sweep_size_is_bounded(make_scenario):
    values = list(range(1, 101))
    path = make_scenario({"sweep": {"customers.count": values, "evaluation.draws": values,
                                    "solver.threads": [1, 2]}})
    with pytest.raises(InputError, match=f"exceed the limit of {MAX_SWEEP_POINTS}"):
        load_scenario(path)


def test_field_path_parsing():
    assert parse_field_path("offers.curtailment[2].kw") == ["offers", "curtailment", 2, "kw"]
    assert parse_field_path("seed") == ["seed"]


# --- planning --------------------------------------------------------------------------------


def test_plan_reports_bad_files_and_name_clashes_and_dedupes(make_scenario, tiny_scenario):
    broken = make_scenario(text="name = 'x'\n[network\n")
    same_name = make_scenario({"evaluation": {"draws": 5}})
    jobs, failures = plan_jobs([str(tiny_scenario), str(tiny_scenario), str(broken), str(same_name)])
    assert len(jobs) == 1
    messages = {o.id: o.message for o in failures.values()}
    assert len(messages) == 2
    assert any("malformed TOML" in m and str(broken) in m for m in messages.values())
    assert any("name 'tiny-cigre' is also used by" in m for m in messages.values())
    assert all(o.exit_code == 1 for o in failures.values())


def test_unwritable_output_folder_is_input_error(tmp_path, tiny_scenario):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="--out: cannot write to output folder"):
        run_batch([str(tiny_scenario)], blocker / "out", progress=False)
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("not-an-address", "missing port number"),
        pytest.param("tcp://127.0.0.1:9", "Timed out trying to connect", marks=pytest.mark.slow),
    ],
)
def test_unreachable_scheduler_is_input_error_and_leaves_nothing(
    tiny_scenario, tmp_path, address, message
):
    with pytest.raises(InputError, match=f"--scheduler: cannot connect to {address}") as caught:
        run_batch([str(tiny_scenario)], tmp_path / "out", scheduler=address, progress=False)
    assert message in str(caught.value)
    assert not (tmp_path / "out").exists()


# --- a real LocalCluster with the real pipeline ----------------------------------------------


@pytest.fixture(scope="module")
def scheduler_address():
    """One 2-worker cluster for the reruns (starting one costs seconds on a busy machine);
    `run_batch` reaches it by address, the way `--scheduler` reaches a remote cluster."""
    with local_cluster(2) as cluster:
        yield cluster.scheduler_address



def _marker_mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob(f"*/{MARKER}")}


def test_batch_runs_and_resumes_the_real_pipeline(make_scenario, cli, tmp_path, scheduler_address):
    good = make_scenario({"sweep": SWEEP})
    bad = make_scenario({"name": "bad-network", "network": {"source": "pandapower:no_such_feeder"}})
    out = tmp_path / "out"

    result = cli.invoke(
        app, ["batch", str(good), str(bad), "-o", str(out), "--scheduler", scheduler_address]
    )
    assert result.exit_code == 1, result.output
    assert "2 done, 0 already done (skipped), 1 failed" in result.stdout
    assert "failed bad-network-" in result.stdout and "no_such_feeder" in result.stdout
    assert "Traceback" not in result.output

    points = expand_sweep(load_scenario(good))
    for point in points:
        assert (out / point.id / "result.nc").is_file()
        marker = json.loads((out / point.id / MARKER).read_text())
        assert marker["content_hash"] == scenario_hash(point.scenario)
        assert marker["values"] == point.values
    assert not any(p.name.startswith("bad-network") for p in out.iterdir())
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no staging or temp files

    table = pd.read_csv(out / "summary.csv")
    assert sorted(table["status"]) == ["done", "done", "failed"]
    failed = table[table["status"] == "failed"].iloc[0]
    assert failed["exit_code"] == 1 and "no_such_feeder" in failed["message"]
    assert sorted(table["sweep:customers.ev_share"].dropna()) == [0.1, 0.4]
    with xr.open_dataset(out / "summary.nc", engine="h5netcdf") as summary:
        assert summary.sizes["scenario"] == 3
        assert summary["peak_kw_before"].attrs["units"] == "kW"
        done = summary["status"].values == "done"
        assert np.isfinite(summary["peak_kw_before"].values[done]).all()
        assert np.isnan(summary["peak_kw_before"].values[~done]).all()
        for point in points:
            with xr.open_dataset(out / point.id / "result.nc", engine="h5netcdf") as run:
                assert float(run["peak_kw_before"]) == pytest.approx(
                    float(summary["peak_kw_before"].sel(scenario=point.id))
                )

    # Rerun: the two finished jobs are skipped (markers untouched), the bad one fails again.
    before = _marker_mtimes(out)
    report = run_batch([str(good), str(bad)], out, scheduler=scheduler_address, progress=False)
    assert [o.status for o in report.outcomes] == ["skipped", "skipped", "failed"]
    assert report.outcomes[0].kpis["peak_kw_before"] == pytest.approx(
        float(table.set_index("id").loc[points[0].id, "peak_kw_before"])
    )
    assert _marker_mtimes(out) == before

    # A job killed before its marker was written is not done: only it runs again.
    (out / points[0].id / MARKER).unlink()
    report = run_batch([str(good)], out, scheduler=scheduler_address, progress=False)
    assert {o.id: o.status for o in report.outcomes} == {
        points[0].id: "done", points[1].id: "skipped"
    }
    assert _marker_mtimes(out)[points[1].id] == before[points[1].id]


# --- a real LocalCluster with a stand-in job function ----------------------------------------


def _stand_in_runner(scenario: Scenario, out_dir: Path) -> dict[str, float]:
    """Writes a real result.nc; fails in the way the scenario's customer count asks for."""
    if scenario.customers.count == 13:
        os._exit(17)  # the worker process dies, as on a segfault or the OOM killer
    if scenario.customers.count == 14:
        raise ZeroDivisionError("a bug")
    if scenario.customers.count == 15:
        raise InfeasibleError("budget_eur too small for any offer")
    out_dir.mkdir(parents=True, exist_ok=True)
    peak = float(scenario.customers.count * scenario.customers.ev_share)
    ds = xr.Dataset({"peak_kw_before": ((), peak, {"units": "kW"})})
    ds.to_netcdf(out_dir / "result.nc", engine="h5netcdf")
    return {"peak_kw_before": peak}


@pytest.fixture
def pickled_by_value():
    """Ship this module's functions to the spawned workers by value (they cannot import it)."""
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


def test_failures_are_reported_and_edited_scenarios_recomputed(
    make_scenario, tmp_path, pickled_by_value, scheduler_address
):
    paths = [make_scenario({"name": f"count-{n}", "customers": {"count": n}}) for n in (12, 14, 15)]
    out = tmp_path / "out"
    # The default: a fresh LocalCluster of 2 worker processes.
    report = run_batch([str(p) for p in paths], out, workers=2, progress=False, runner=_stand_in_runner)
    by_name = {o.name: o for o in report.outcomes}
    assert [o.name for o in report.outcomes] == ["count-12", "count-14", "count-15"]
    assert by_name["count-12"].status == "done"
    assert by_name["count-12"].kpis == {"peak_kw_before": pytest.approx(12 * 0.3)}
    assert (by_name["count-14"].exit_code, by_name["count-14"].message) == (
        4, "internal error (ZeroDivisionError: a bug)"
    )
    assert (by_name["count-15"].exit_code, by_name["count-15"].message) == (
        3, "budget_eur too small for any offer"
    )
    assert len(report.failed) == 2
    assert "2 failed" in report.summary_text()
    for name in ("count-14", "count-15"):
        assert not (out / by_name[name].id).exists()

    # Unchanged: skipped. Edited (same name, so same id): recomputed.
    job_dir = out / by_name["count-12"].id
    first_marker = json.loads((job_dir / MARKER).read_text())
    mtime = (job_dir / MARKER).stat().st_mtime_ns
    again = run_batch([str(paths[0])], out, scheduler=scheduler_address, progress=False,
                      runner=_stand_in_runner)
    assert [o.status for o in again.outcomes] == ["skipped"]
    assert (job_dir / MARKER).stat().st_mtime_ns == mtime
    paths[0].write_text(paths[0].read_text().replace("ev_share = 0.3", "ev_share = 0.5"))
    edited = run_batch([str(paths[0])], out, scheduler=scheduler_address, progress=False,
                       runner=_stand_in_runner)
    assert [(o.id, o.status) for o in edited.outcomes] == [(by_name["count-12"].id, "done")]
    assert edited.outcomes[0].kpis == {"peak_kw_before": pytest.approx(12 * 0.5)}
    second_marker = json.loads((job_dir / MARKER).read_text())
    assert second_marker["content_hash"] != first_marker["content_hash"]
    assert completed_kpis(job_dir, first_marker["content_hash"]) is None
    assert completed_kpis(job_dir, second_marker["content_hash"]) == {"peak_kw_before": 6.0}


@pytest.mark.slow
def test_a_job_that_kills_its_worker_is_reported_and_the_rest_finish(
    make_scenario, tmp_path, pickled_by_value
):
    paths = [make_scenario({"name": f"count-{n}", "customers": {"count": n}}) for n in (12, 13, 16)]
    report = run_batch(
        [str(p) for p in paths], tmp_path / "out", workers=2, progress=False,
        runner=_stand_in_runner,
    )
    statuses = {o.name: (o.status, o.exit_code) for o in report.outcomes}
    assert statuses == {"count-12": ("done", 0), "count-13": ("failed", 4), "count-16": ("done", 0)}
    assert "worker lost" in report.failed[0].message
