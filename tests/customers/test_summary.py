"""`gridflex customers` tables and files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from customers.summary import summarize_customers, write_customer_outputs
from tests.customers.feeder_case import feeder_case


def test_tables_add_up_and_files_are_written(tmp_path):
    scenario, population, _, _ = feeder_case()
    tables = summarize_customers(population, scenario)
    tiers = tables["tiers"]
    assert tiers["tier"].tolist() == ["A", "B", "C", "D"]
    assert tiers["customers"].sum() == population.sizes["customer"]
    assert tiers["warnings"].sum() == int(population["warning"].sum())
    assert tiers.loc[3, "deposit_eur"] == scenario.credit.policies["D"].deposit_eur
    weights = tables["satisfaction_weights"]
    assert np.isclose(weights["weight"].sum(), 1.0)
    assert set(tables["warnings"]["tier"]) <= set("ABCD")
    assert "hold-out AUC" in tables["credit_model"]["metric"].tolist()

    written = write_customer_outputs(population, tmp_path, scenario)
    assert {p.name for p in written} >= {"customers.nc", "customers.csv", "tiers.csv",
                                         "warnings.csv", "satisfaction_weights.csv"}
    back = xr.load_dataset(tmp_path / "customers.nc", engine="h5netcdf")
    np.testing.assert_array_equal(back["tier"].values, population["tier"].values)
    assert pd.read_csv(tmp_path / "tiers.csv")["customers"].sum() == population.sizes["customer"]
