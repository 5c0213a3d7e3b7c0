"""Output folders and files (issue 20, items 6–9 and the file modes of item 11).

- an unwritable ``--export-model`` path fails up front with exit 1, before any simulation;
- a staging folder left by a run killed while writing is removed by the next run;
- re-using an output folder leaves no file of the earlier command behind (and never touches
  files gridflex did not write);
- an existing but unwritable output folder fails up front;
- batch summaries get the same file mode as every other output.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import scenarios.pipeline
from scenarios import outputs
from scenarios.cli import app


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if the pipeline starts simulating: the check must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("simulated before the up-front checks")

    monkeypatch.setattr(scenarios.pipeline, "build_feeder", refuse)


def _sys_is_unwritable() -> bool:
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            return False
    except OSError:
        return True


# --- item 6: --export-model ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["folder", "under-a-file", "suffix"])
def test_unwritable_export_model_fails_up_front(cli, tiny_scenario, tmp_path, no_simulation, kind):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    target = {"folder": tmp_path / "model.mps", "under-a-file": blocker / "model.mps",
              "suffix": tmp_path / "model.txt"}[kind]
    if kind == "folder":
        target.mkdir()
    out = tmp_path / "out"
    result = cli.invoke(app, ["run", str(tiny_scenario), "-o", str(out), "--export-model", str(target)])
    line = _one_error_line(result)
    assert result.exit_code == 1, line
    assert "--export-model" in line and str(target) in line
    assert not out.exists()


def test_export_model_that_highs_cannot_write_is_exit_1_not_3(cli, tiny_scenario, tmp_path,
                                                              monkeypatch):
    """Should the path break between the check and the write, it is still bad input."""
    target = tmp_path / "model.mps"
    monkeypatch.setattr(outputs, "check_writable_file", lambda *a, **k: None)
    monkeypatch.setattr(scenarios.pipeline, "check_writable_file", lambda *a, **k: None,
                        raising=False)
    target.mkdir()
    result = cli.invoke(app, ["run", str(tiny_scenario), "-o", str(tmp_path / "out"),
                              "--export-model", str(target)])
    line = _one_error_line(result)
    assert result.exit_code == 1, line
    assert "--export-model" in line and str(target) in line


# --- item 7: staging folders of killed runs ---------------------------------------------------

_KILLED_WRITER = """
import os, sys
from pathlib import Path
from scenarios.outputs import staged_output
with staged_output(Path(sys.argv[1])) as staging:
    (staging / "result.nc").write_text("half written")
    os.kill(os.getpid(), 9)
"""


def _staging(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-"))


def test_staging_folder_of_a_killed_run_is_removed_by_the_next(cli, tiny_scenario, tmp_path):
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(out)], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert len(_staging(tmp_path)) == 1  # what the kill leaves behind
    # An old folder of unknown owner (older gridflex) goes; a fresh one may be a live run.
    old = tmp_path / ".out.tmp-k3j2h1g0"
    old.mkdir()
    os.utime(old, (time.time() - 2 * outputs.STALE_STAGING_S,) * 2)
    fresh = tmp_path / ".out.tmp-a1b2c3d4"
    fresh.mkdir()

    result = cli.invoke(app, ["simulate", str(tiny_scenario), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert _staging(tmp_path) == [fresh.name]
    assert (out / "result.nc").stat().st_size > 1000


def test_staging_folder_of_a_live_run_is_kept(tmp_path):
    out = tmp_path / "out"
    with outputs.staged_output(out) as staging:
        (staging / "a.txt").write_text("a")
        assert outputs.remove_stale_staging(out) == []
        assert staging.is_dir()
    assert (out / "a.txt").read_text() == "a"
    assert _staging(tmp_path) == []


# --- item 8: re-used output folders ------------------------------------------------------------


def test_reused_output_folder_holds_only_the_last_commands_files(cli, tiny_scenario, tmp_path):
    out = tmp_path / "out"
    first = cli.invoke(app, ["run", str(tiny_scenario), "-o", str(out)])
    assert first.exit_code == 0, first.stderr
    assert (out / "offers_by_tier.png").is_file()
    (out / "notes.txt").write_text("the planner's own file")

    second = cli.invoke(app, ["simulate", str(tiny_scenario), "-o", str(out)])
    assert second.exit_code == 0, second.stderr
    names = {p.name for p in out.iterdir()}
    assert "offers_by_tier.png" not in names
    assert {"result.nc", "report.html", "notes.txt"} <= names
    assert (out / "notes.txt").read_text() == "the planner's own file"


def test_a_doctored_manifest_cannot_remove_files_outside_the_folder(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / outputs.MANIFEST).write_text('{"files": ["../precious.txt", "..", "x.nc"]}')
    (out / "x.nc").write_text("stale")
    with outputs.staged_output(out) as staging:
        (staging / "y.nc").write_text("new")
    assert outside.read_text() == "keep"
    assert sorted(p.name for p in out.iterdir()) == [outputs.MANIFEST, "y.nc"]


# --- item 9: an existing output folder that takes no files ------------------------------------


def test_existing_unwritable_output_folder_fails_up_front(cli, tiny_scenario, tmp_path,
                                                          monkeypatch, no_simulation):
    # Tests run as root, where permission bits do not stop writes: the folder refuses new
    # files the way a read-only mount or a folder of another user does.
    out = tmp_path / "out"
    out.mkdir()
    real = tempfile.TemporaryFile

    def refusing(*args, dir=None, **kwargs):  # noqa: A002 — tempfile's own keyword
        if dir is not None and Path(dir).resolve() == out.resolve():
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(outputs.tempfile, "TemporaryFile", refusing)
    result = cli.invoke(app, ["simulate", str(tiny_scenario), "-o", str(out)])
    line = _one_error_line(result)
    assert result.exit_code == 1, line
    assert f"output folder {out}: cannot write (Permission denied)" in line


@pytest.mark.skipif(not _sys_is_unwritable(), reason="/sys takes files here")
def test_read_only_mount_as_output_folder_fails_up_front(cli, tiny_scenario, no_simulation):
    result = cli.invoke(app, ["simulate", str(tiny_scenario), "-o", "/sys"])
    line = _one_error_line(result)
    assert result.exit_code == 1, line
    assert "output folder /sys: cannot write" in line


# --- item 11: file modes ----------------------------------------------------------------------


def test_batch_summaries_get_the_usual_file_mode(tmp_path):
    from scenarios.batch import _atomic_write

    target = tmp_path / "summary.csv"
    _atomic_write(target, lambda tmp: tmp.write_text("a,b\n1,2\n"))
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    assert stat.S_IMODE(target.stat().st_mode) == outputs.default_file_mode()
