"""`gridflex credit fit` on generated books with known risk; `[credit] scorecard` applies it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from customers.payment_history import synthesize_payment_history
from customers.population import build_population
from scenarios.cli import app
from tests.customers.feeder_case import make_scenario as make_feeder_scenario
from tests.customers.feeder_case import net

runner = CliRunner()


def write_book(path, customers: int, months: int = 36) -> pd.DataFrame:
    """A generated book: synthetic payment chains driven by a latent risk (the known truth)."""
    scenario = make_feeder_scenario(customers={"count": customers})
    history = synthesize_payment_history(build_population(scenario, net()), scenario,
                                         months=months)
    ids = np.array([f"CUST-{i:06d}" for i in range(customers)])
    month = pd.DatetimeIndex(history["month"].values).strftime("%Y-%m")
    frame = pd.DataFrame({
        "customer_id": np.repeat(ids, months),
        "month": np.tile(month, customers),
        "bill_eur": history["bill_eur"].values.ravel().round(2),
        "paid_eur": history["paid_eur"].values.ravel().round(2),
        "days_late": history["days_late"].values.ravel().round(0),
    })
    frame.to_csv(path, index=False)
    return frame


def _fit(path, out):
    done = runner.invoke(app, ["credit", "fit", str(path), "-o", str(out)])
    assert done.exit_code == 0, done.output
    return done.output, json.loads(out.read_text())


def _check(output: str, card: dict, customers: int, max_tie: float, max_width: float) -> None:
    v = card["validation"]
    assert v["customers"] == customers and v["outcome_overlap_months"] == 0
    assert 0.75 < v["auc_low"] < v["auc"] < v["auc_high"]
    assert v["auc_high"] - v["auc_low"] < max_width
    assert v["gini"] == pytest.approx(2 * v["auc"] - 1)
    assert v["largest_tie_share"] < max_tie
    assert f"{v['auc']:.3f} (95 % bootstrap" in output
    calibration = pd.DataFrame(card["calibration"])
    assert len(calibration) == 10 and calibration["rows"].sum() == customers
    # The riskiest decile is far worse than the safest, as predicted and as observed.
    assert calibration["observed_bad_rate"].iloc[0] > 5 * calibration["observed_bad_rate"].iloc[-1]


def test_fit_small_book_fast(tmp_path):
    write_book(tmp_path / "book.csv", 2_000)
    output, card = _fit(tmp_path / "book.csv", tmp_path / "scorecard.json")
    _check(output, card, 2_000, max_tie=0.20, max_width=0.10)
    assert (tmp_path / "scorecard_calibration.csv").is_file()


@pytest.mark.slow
def test_fit_utility_book_of_20000(tmp_path):
    write_book(tmp_path / "book.csv", 20_000)
    output, card = _fit(tmp_path / "book.csv", tmp_path / "scorecard.json")
    _check(output, card, 20_000, max_tie=0.10, max_width=0.04)


def test_tiny_book_is_refused_with_the_numbers(tmp_path):
    write_book(tmp_path / "book.csv", 6)
    out = tmp_path / "scorecard.json"
    done = runner.invoke(app, ["credit", "fit", str(tmp_path / "book.csv"), "-o", str(out)])
    assert done.exit_code == 1
    assert "a book of 6 customers" in done.output and "at least 200 customers" in done.output
    assert len(done.output.strip().splitlines()) == 1 and not out.exists()


def test_future_month_is_exit_1_naming_line(tmp_path):
    frame = write_book(tmp_path / "book.csv", 6, months=14)
    frame.loc[5, "month"] = "2999-01"
    frame.to_csv(tmp_path / "book.csv", index=False)
    done = runner.invoke(app, ["credit", "fit", str(tmp_path / "book.csv")])
    assert done.exit_code == 1
    assert "book.csv, line 7, column 'month': 2999-01 is in the future" in done.output


def test_scorecard_applies_to_a_run(tmp_path, make_scenario):
    write_book(tmp_path / "book.csv", 2_000)
    _fit(tmp_path / "book.csv", tmp_path / "scorecard.json")
    scenario = make_scenario({"customers": {"count": 150},
                              "credit": {"scorecard": str(tmp_path / "scorecard.json")}})
    done = runner.invoke(app, ["customers", str(scenario), "-o", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    scored = pd.read_csv(tmp_path / "out" / "customers.csv")
    # Finer than the 14 distinct scores a feeder-fitted card gave 150 customers (issue 19).
    assert scored["credit_score"].nunique() > 28
    assert scored["credit_score"].value_counts().iloc[0] < 0.25 * len(scored)
    assert scored["tier"].nunique() >= 2
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    scenario = make_scenario({"credit": {"scorecard": str(bad)}})
    done = runner.invoke(app, ["customers", str(scenario), "-o", str(tmp_path / "out2")])
    assert done.exit_code == 1 and "field 'format'" in done.output
