"""Bad input of the offer plan (issue 16): exit 1 and one error line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scenarios.cli import app
from tests.scenarios.test_pipeline import SMALL


def _run(tmp_path: Path, text: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    done = CliRunner().invoke(app, ["run", str(path), "-o", str(out)])
    return done, out


@pytest.mark.parametrize("value", ["0.0", "1.0", "-0.2", "1.5"])
def test_peak_quantile_outside_the_open_unit_interval(tmp_path, value):
    text = SMALL.replace("peak_value_eur_per_kw = 80.0",
                         f"peak_value_eur_per_kw = 80.0\npeak_quantile = {value}")
    done, out = _run(tmp_path, text)
    assert done.exit_code == 1, done.output
    assert "objective.peak_quantile" in done.output
    assert "Traceback" not in done.output and not out.exists()


def test_max_events_zero_with_a_curtailment_offer(tmp_path):
    text = SMALL.replace('name = "pause-3kw"', 'name = "pause-3kw"\nmax_events = 0')
    done, out = _run(tmp_path, text)
    assert done.exit_code == 1, done.output
    assert "offers.curtailment[0].max_events" in done.output
    assert "Traceback" not in done.output and not out.exists()


def test_dispatch_threshold_that_calls_no_event(tmp_path):
    """A fixed threshold above every day's forecast peak: no event would ever be called."""
    done, out = _run(tmp_path, SMALL + "\n[dispatch]\nthreshold_kw = 1e9\n")
    assert done.exit_code == 1, done.output
    assert "dispatch.threshold_kw" in done.output
    assert "Traceback" not in done.output and not out.exists()
