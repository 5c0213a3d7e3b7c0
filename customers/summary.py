"""Tables for `gridflex customers`: credit tiers, warnings, satisfaction weights, credit model.

`summarize_customers` turns a scored population (after `customers.credit.assess_credit` and
`customers.satisfaction.baseline_satisfaction`) into small pandas tables;
`write_customer_outputs` writes the population as ``customers.nc`` and ``customers.csv`` and each
table as CSV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from customers.credit import ARREARS_WINDOW_MONTHS, LOSS_GIVEN_ARREARS
from customers.io import write_customers_csv
from scenarios.schema import TIERS, Scenario

#: Warned customers listed individually, highest probability first.
WARNING_LIST_LENGTH = 20


def tier_table(population: xr.Dataset, scenario: Scenario | None = None) -> pd.DataFrame:
    """Per tier: count, share, score range, observed arrears rate (any arrears in the last 12
    months), mean predicted 3-month arrears probability, warnings, expected bad debt of the
    next 3 months (probability × loss share × 3 monthly bills) and, with a scenario, its policy."""
    tier = population["tier"].values.astype(str)
    score = population["credit_score"].values
    probability = population["arrears_probability"].values
    observed = population["arrears_months_12m"].values > 0 if "arrears_months_12m" in population \
        else np.full(len(tier), np.nan)
    bill = population["monthly_bill_eur"].values if "monthly_bill_eur" in population \
        else np.zeros(len(tier))
    bad_debt = probability * LOSS_GIVEN_ARREARS * ARREARS_WINDOW_MONTHS * bill
    rows = []
    for name in TIERS:
        m = tier == name
        row = {
            "tier": name,
            "customers": int(m.sum()),
            "share": float(m.mean()) if len(m) else 0.0,
            "score_min": float(score[m].min()) if m.any() else np.nan,
            "score_max": float(score[m].max()) if m.any() else np.nan,
            "observed_arrears_rate": float(observed[m].mean()) if m.any() else np.nan,
            "arrears_probability_mean": float(probability[m].mean()) if m.any() else np.nan,
            "warnings": int(population["warning"].values[m].sum()),
            "expected_bad_debt_eur": float(bad_debt[m].sum()),
        }
        if scenario is not None:
            policy = scenario.credit.policies[name]
            offers = policy.eligible_offers
            row.update({
                "eligible_offers": offers if isinstance(offers, str) else ", ".join(offers),
                "incentive_cap_eur": policy.incentive_cap_eur,
                "deposit_eur": policy.deposit_eur,
                "pay_for_performance_only": policy.pay_for_performance_only,
                "prepayment_suggested": policy.prepayment_suggested,
            })
        rows.append(row)
    return pd.DataFrame(rows)


def warning_table(population: xr.Dataset) -> pd.DataFrame:
    """The warned customers, highest arrears probability first (at most `WARNING_LIST_LENGTH`)."""
    warn = population["warning"].values
    frame = pd.DataFrame({
        "customer_id": population["customer"].values[warn],
        "segment": population["segment"].values[warn],
        "tier": population["tier"].values[warn],
        "arrears_probability": population["arrears_probability"].values[warn],
        "credit_score": population["credit_score"].values[warn],
        **{f"reason_{k}": population[f"warning_reason_{k}"].values[warn] for k in (1, 2, 3)
           if f"warning_reason_{k}" in population},
    })
    frame = frame.sort_values("arrears_probability", ascending=False, kind="stable")
    return frame.head(WARNING_LIST_LENGTH).reset_index(drop=True)


def warning_reasons(population: xr.Dataset) -> pd.DataFrame:
    """How often each feature is the first reason of a warning."""
    warn = population["warning"].values
    if "warning_reason_1" not in population or not warn.any():
        return pd.DataFrame({"reason": [], "warnings": []})
    counts = pd.Series(population["warning_reason_1"].values[warn]).value_counts()
    return pd.DataFrame({"reason": counts.index.astype(str), "warnings": counts.to_numpy()})


def satisfaction_weight_table(population: xr.Dataset) -> pd.DataFrame:
    """Factor weights and the mean baseline factor score."""
    if "satisfaction_weight" not in population:
        return pd.DataFrame({"factor": [], "weight": [], "mean_score_before": []})
    factor = population["factor"].values.astype(str)
    mean_score = (population["satisfaction_factor"].mean("customer").values
                  if "satisfaction_factor" in population else np.full(len(factor), np.nan))
    return pd.DataFrame({
        "factor": factor,
        "weight": population["satisfaction_weight"].values,
        "mean_score_before": mean_score,
        "method": population["satisfaction_weight"].attrs.get("method", ""),
    })


def credit_model_table(population: xr.Dataset) -> pd.DataFrame:
    """Hold-out diagnostics of the early-warning model and the scorecard's features."""
    names = {
        "credit_auc": "hold-out AUC",
        "credit_ks": "hold-out KS",
        "credit_brier": "hold-out Brier score",
        "credit_calibration_error": "hold-out expected calibration error",
        "credit_holdout_rows": "hold-out rows (customer-months)",
        "credit_book_size": "customers in the fitting book",
        "credit_scorecard_features": "scorecard features",
    }
    rows = [(label, population.attrs[key]) for key, label in names.items() if key in population.attrs]
    return pd.DataFrame(rows, columns=["metric", "value"])


def segment_table(population: xr.Dataset) -> pd.DataFrame:
    """Per segment: customers, mean annual energy and device shares."""
    frame = population[["segment", "annual_kwh", "has_ev", "has_heat_pump", "has_pv",
                        "has_ac"]].to_dataframe()
    grouped = frame.groupby("segment")
    out = grouped.agg(customers=("annual_kwh", "size"), annual_kwh_mean=("annual_kwh", "mean"),
                      ev_share=("has_ev", "mean"), heat_pump_share=("has_heat_pump", "mean"),
                      pv_share=("has_pv", "mean"), ac_share=("has_ac", "mean"))
    return out.reset_index()


def summarize_customers(population: xr.Dataset, scenario: Scenario | None = None
                        ) -> dict[str, pd.DataFrame]:
    """All tables of `gridflex customers`, by name: ``segments``, ``tiers``, ``warnings``,
    ``warning_reasons``, ``satisfaction_weights``, ``credit_model``."""
    return {
        "segments": segment_table(population),
        "tiers": tier_table(population, scenario),
        "warnings": warning_table(population),
        "warning_reasons": warning_reasons(population),
        "satisfaction_weights": satisfaction_weight_table(population),
        "credit_model": credit_model_table(population),
    }


def write_customer_outputs(population: xr.Dataset, out_dir: Path | str,
                           scenario: Scenario | None = None) -> list[Path]:
    """Write ``customers.nc``, ``customers.csv`` and one ``<table>.csv`` per summary table."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nc = out / "customers.nc"
    population.to_netcdf(nc, engine="h5netcdf")
    written = [nc, write_customers_csv(population, out / "customers.csv")]
    for name, table in summarize_customers(population, scenario).items():
        path = out / f"{name}.csv"
        table.to_csv(path, index=False, float_format="%.6g")
        written.append(path)
    return written
