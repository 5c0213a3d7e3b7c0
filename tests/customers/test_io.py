"""Customers CSV: round trip and one clear error per kind of bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from customers.io import read_customers_csv, write_customers_csv
from customers.population import UNITS, build_population
from scenarios.errors import InputError
from tests.customers.feeder_case import make_scenario, net


@pytest.fixture()
def written(tmp_path):
    population = build_population(make_scenario(), net())
    path = write_customers_csv(population, tmp_path / "customers.csv")
    return population, path


def test_round_trip(written):
    population, path = written
    back = read_customers_csv(path, net())
    for name in UNITS:
        if population[name].dtype.kind == "f":
            np.testing.assert_allclose(back[name].values, population[name].values, rtol=1e-9)
        else:
            np.testing.assert_array_equal(back[name].values, population[name].values)
    np.testing.assert_array_equal(back["customer"].values, population["customer"].values)


def _rewrite(path, edit):
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(frame)
    frame.to_csv(path, index=False)


@pytest.mark.parametrize(
    ("edit", "column", "line"),
    [
        (lambda f: f.drop(columns="annual_kwh", inplace=True), "annual_kwh", None),
        (lambda f: f.__setitem__("annual_kwh", f["annual_kwh"].where(f.index != 3, "")),
         "annual_kwh", 5),
        (lambda f: f.__setitem__("annual_kwh", f["annual_kwh"].where(f.index != 4, "nan")),
         "annual_kwh", 6),
        (lambda f: f.__setitem__("annual_kwh", f["annual_kwh"].where(f.index != 2, "-5")),
         "annual_kwh", 4),
        (lambda f: f.__setitem__("bus", f["bus"].where(f.index != 7, "999")), "bus", 9),
        (lambda f: f.__setitem__("customer_id", f["customer_id"].where(f.index != 9, "0")),
         "customer_id", 11),
        (lambda f: f.__setitem__("segment", f["segment"].where(f.index != 1, "martian")),
         "segment", 3),
        (lambda f: f.__setitem__("has_ev", f["has_ev"].where(f.index != 0, "maybe")),
         "has_ev", 2),
    ],
)
def test_bad_input_names_file_line_and_column(written, edit, column, line):
    _, path = written
    _rewrite(path, edit)
    with pytest.raises(InputError) as info:
        read_customers_csv(path, net())
    message = str(info.value)
    assert str(path) in message and f"column '{column}'" in message
    if line is not None:
        assert f"line {line}," in message


def test_minimal_columns_and_bus_without_load(tmp_path):
    grid = net()
    free_bus = int(next(b for b in grid.bus.index if b not in set(grid.load.bus)))
    path = tmp_path / "c.csv"
    path.write_text(
        "customer_id,bus,segment,annual_kwh,has_ev\n"
        f"10,{int(grid.load.bus.iloc[0])},residential,3000,yes\n"
        f"11,{free_bus},commercial,25000,no\n"
    )
    ds = read_customers_csv(path, grid)
    assert ds["load"].values.tolist() == [int(grid.load.index[0]), -1]
    assert ds["ev_charger_kw"].values.tolist() == [11.0, 0.0]
    assert ds["customer"].values.tolist() == [10, 11]


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_customers_csv(tmp_path / "nope.csv", net())


def test_scored_population_round_trips_with_credit_fields(tmp_path):
    from tests.customers.feeder_case import feeder_case

    _, population, _, _ = feeder_case()
    path = write_customers_csv(population, tmp_path / "scored.csv")
    back = read_customers_csv(path, net())
    np.testing.assert_array_equal(back["tier"].values, population["tier"].values)
    np.testing.assert_array_equal(back["warning"].values, population["warning"].values)
    np.testing.assert_allclose(back["credit_score"].values, population["credit_score"].values,
                               rtol=1e-9)


def test_every_text_csv_reader_names_the_line_of_a_ragged_row_and_refuses_utf16(tmp_path):
    """Customers, registers, events, books and store imports share `read_text_csv`: a row with
    one field too many is named by its line (header = line 1), UTF-16 is named as such."""
    from customers.io import read_text_csv
    from scenarios.errors import InputError

    ragged = tmp_path / "ragged.csv"
    ragged.write_text("customer_id,bus\nC1,3\nC2,4,9\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"ragged\.csv, line 3: 3 fields, the header has 2"):
        read_text_csv(ragged)
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("customer_id,bus\nC1,3\n".encode("utf-16"))
    with pytest.raises(InputError, match="looks like UTF-16"):
        read_text_csv(utf16)
    ok = tmp_path / "ok.csv"
    ok.write_text(" customer_id , bus\n0012,3\n", encoding="utf-8")
    assert read_text_csv(ok)["customer_id"].tolist() == ["0012"]
