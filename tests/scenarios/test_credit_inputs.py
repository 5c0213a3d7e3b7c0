"""Payment-history files and extreme credit books (issue 20, items 3 and 4).

A payment history that is empty, UTF-16 or has a ragged row used to end in "internal error"
(exit 4) without the file's name; valid but degenerate books (nobody ever late; every
``annual_kwh = 0``) crashed the scorecard's logistic regression. Now: exit 1 naming the file
and the line, or the run goes on with the documented fallback (every customer scored at the
book's arrears rate, one tier) said on the console and in the report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from scenarios.cli import app

DATA = Path(__file__).parent / "data"
CUSTOMERS_OK = (DATA / "customers_ok.csv").read_text()
WITH_FILES = {"customers": {"source": "file", "file": "customers.csv"},
              "credit": {"history_file": "history.csv"}}
HEADER = "customer_id,month,bill_eur,paid_eur,days_late"


def history_csv(*, late: bool = True, months: int = 24) -> str:
    """A valid history of every customer of customers_ok.csv; ``late=False``: never late."""
    ids = pd.read_csv(DATA / "customers_ok.csv")["customer_id"].to_numpy()
    rows = [HEADER]
    for k, month in enumerate(pd.period_range("2014-01", periods=months, freq="M")):
        for i in ids:
            behind = late and (i + k) % 5 == 0 and i % 2 == 0
            paid = 40.0 if behind else 80.0
            rows.append(f"{i},{month},80.00,{paid:.2f},{25 if behind else 0}")
    return "\n".join(rows) + "\n"


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _with_history(make_scenario, history: str | bytes, customers: str = CUSTOMERS_OK) -> Path:
    return make_scenario(WITH_FILES, files={"customers.csv": customers, "history.csv": history})


def _ragged() -> str:
    lines = history_csv().splitlines()
    lines[3] += ",7"
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("content, expect", [
    ("", "the file is empty; expected a header customer_id,month"),
    ("\n\n", "the file is empty"),
    (HEADER + "\n", "no payment rows after the header"),
    (history_csv().encode("utf-16"), "not UTF-8 text (it looks like UTF-16)"),
    ((HEADER + "\n1,2014-01,80,80,0\n2,2014-01,80,80,0\n").encode() + b"3,2014-01,8\xe90,80,0\n",
     "line 4: not UTF-8 text"),
    (_ragged(), "line 4: 6 fields, the header has 5"),
    (history_csv().replace("\n1,2014-01,", "\n1.5,2014-01,", 1),
     "line 2, column 'customer_id': '1.5' is not a customer id"),
    (history_csv(months=2), "payment history of 2 months is too short"),
], ids=["empty", "blank-lines", "header-only", "utf-16", "latin-1", "ragged-row",
        "fractional-id", "one-month"])
def test_bad_history_file_is_exit_1_naming_file_and_line(make_scenario, cli, tmp_path, content,
                                                         expect):
    path = _with_history(make_scenario, content)
    out = tmp_path / "out"
    result = cli.invoke(app, ["simulate", str(path), "-o", str(out)])
    line = _one_error_line(result)
    assert result.exit_code == 1, line
    assert str(path.parent / "history.csv") in line and expect in line
    assert not out.exists()


def test_the_valid_history_runs(make_scenario, cli, tmp_path):
    """The base the broken files start from is fine: failures come from what they change."""
    result = cli.invoke(app, ["simulate", str(_with_history(make_scenario, history_csv())),
                              "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    assert "credit scorecard not fitted" not in result.stderr


def _run_degenerate(cli, path: Path, out: Path) -> tuple[xr.Dataset, str]:
    result = cli.invoke(app, ["simulate", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    with xr.open_dataset(out / "result.nc", engine="h5netcdf") as ds:
        loaded = ds.load()
    return loaded, result.stderr


def test_book_where_nobody_was_ever_late_falls_back_to_one_tier(make_scenario, cli, tmp_path):
    path = _with_history(make_scenario, history_csv(late=False))
    ds, stderr = _run_degenerate(cli, path, tmp_path / "out")
    assert "warning: credit scorecard not fitted: no customer of the book reached serious " \
           "arrears" in stderr
    assert len(set(ds["customer_tier"].values)) == 1
    assert np.ptp(ds["credit_score"].values) == 0.0
    assert "no customer of the book reached serious arrears" in ds.attrs["credit_note"]
    assert "credit scorecard not fitted" in (tmp_path / "out" / "report.html").read_text()


def test_customers_with_zero_energy_fall_back_to_one_tier(make_scenario, cli, tmp_path):
    frame = pd.read_csv(DATA / "customers_ok.csv")
    frame["annual_kwh"] = 0
    for column in ("has_ev", "has_heat_pump"):
        if column in frame:
            frame[column] = False
    path = make_scenario({"customers": {"source": "file", "file": "customers.csv"}},
                         files={"customers.csv": frame.to_csv(index=False)})
    ds, stderr = _run_degenerate(cli, path, tmp_path / "out")
    assert "warning: credit scorecard not fitted" in stderr
    assert len(set(ds["customer_tier"].values)) == 1


def test_fallback_card_scores_the_books_odds():
    from customers.credit import BASE_ODDS, BASE_SCORE, PDO, fit_scorecard

    X = np.zeros((40, 8))
    card = fit_scorecard(X, np.zeros(40, bool))
    assert card.features == () and card.fallback
    want = BASE_SCORE - PDO / np.log(2) * np.log(BASE_ODDS) + PDO / np.log(2) * np.log(40.5 / 0.5)
    np.testing.assert_allclose(card.score(X), want, rtol=1e-12)
    worst = fit_scorecard(X, np.ones(40, bool))
    assert worst.score(X)[0] < card.score(X)[0]
