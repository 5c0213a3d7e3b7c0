"""Commands reading the data store instead of files: meter-driven runs, calibrate, mv, credit fit.

Each reads its selection from the store (`scenarios.store_queries`), hands the same text frames
the file readers produce to the same screening and fitting code (so a store run and a file run
of the same data give the same numbers), and records its lineage in the store.

Meter-driven runs read the whole history of the selected customers, not only the simulated
window: screening's spike level (a percentile of the customer's readings) and the gap fill
(the meter's mean at that time of day) use the whole series, as a file run does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from scenarios.errors import InputError

KEY_VARIABLE = "GRIDFLEX_PSEUDONYM_KEY"


def store_url(scenario_or_none, text: str) -> str:
    """A folder store relative to the scenario's folder; URLs as given."""
    if text.startswith(("postgresql://", "postgres://")):
        return text
    path = Path(text)
    base = getattr(scenario_or_none, "base_dir", None)
    return str(path if path.is_absolute() or base is None else Path(base) / path)


def read_from_store(scenario, net) -> tuple[str, str, pd.DataFrame, pd.DataFrame]:
    """Register (non-personal fields) and meter reads of the scenario's customer selection.

    Returns the meter and register labels for messages, the meter text frame and the placed
    register; the reads are recorded in the store's lineage with the run's output folder.
    """
    from scenarios.meter_loads import place_register
    from scenarios.store import open_store
    from scenarios.store_queries import RUN_OUTPUT, meter_frame, record_lineage, register_frame

    cfg = scenario.customers
    store = open_store(store_url(scenario, cfg.store))
    try:
        register = register_frame(store, cfg.store_customers, cfg.store_feeder)
        register_label = f"store {store.url}, table register"
        register = place_register(register, register_label, net)
        raw = meter_frame(store, register["customer_id"].tolist())
        record_lineage(store, f"run {scenario.name}",
                       RUN_OUTPUT.get() or "(not written)")
    finally:
        store.close()
    return f"store {store.url}, table meter_reads", register_label, raw, register


def pseudonymized(population: xr.Dataset, measured: int) -> xr.Dataset:
    """The measured customers' IDs replaced by keyed pseudonyms (key from the environment)."""
    from scenarios.store_queries import pseudonym

    key = os.environ.get(KEY_VARIABLE, "")
    if not key:
        raise InputError(f"customers.pseudonymize: set the key in the environment variable "
                         f"{KEY_VARIABLE} (the same key gives the same pseudonyms)")
    ids = population["customer_id"].values.astype(object).copy()
    ids[:measured] = [pseudonym(c, key) for c in ids[:measured]]
    out = population.copy()
    out["customer_id"] = population["customer_id"].copy(data=np.asarray(ids, dtype=str))
    return out


class _Labelled(pd.DataFrame):
    """A meter text frame that prints as its store label, so the file commands' messages name
    the store table instead of a file (`screen_meter_data` takes frames as well as paths)."""

    _metadata = ["label"]

    def __str__(self) -> str:
        return getattr(self, "label", "store")

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _selected_reads(store, customers, feeder, start, end) -> _Labelled:
    from scenarios.store_queries import meter_frame, stored_customers

    ids = list(customers) if customers else stored_customers(store, feeder)
    frame = _Labelled(meter_frame(store, ids, start, end))
    frame.label = f"store {store.url}, table meter_reads"
    return frame


def calibrate_from_store(url: str, out: Path, *, customers=None, feeder=None, start=None,
                         end=None, **options) -> str:
    """`gridflex calibrate` on the store's reads of the selection (see `calibrate_meter_file`)."""
    from scenarios.meter_data import calibrate_meter_file
    from scenarios.store import open_store
    from scenarios.store_queries import record_lineage

    store = open_store(url)
    try:
        reads = _selected_reads(store, customers, feeder, start, end)
        summary = calibrate_meter_file(reads, out, **options)
        record_lineage(store, "calibrate", str(out))
    finally:
        store.close()
    return summary


def mv_from_store(url: str, out: Path, *, customers=None, feeder=None, start=None, end=None,
                  **options) -> str:
    """`gridflex mv` on the store's reads and events (see `mv_meter_file`)."""
    import tempfile

    from scenarios.meter_data import mv_meter_file
    from scenarios.store import open_store
    from scenarios.store_queries import events_frame, record_lineage

    store = open_store(url)
    try:
        reads = _selected_reads(store, customers, feeder, start, end)
        with tempfile.TemporaryDirectory() as folder:
            # The events reader takes a file; events hold no personal data.
            events = Path(folder) / "events.csv"
            events_frame(store).to_csv(events, index=False)
            summary = mv_meter_file(reads, events, out, **options)
            summary = summary.replace(str(events), f"store {store.url}, table events")
        record_lineage(store, "mv", str(out))
    finally:
        store.close()
    return summary


def credit_fit_from_store(url: str, out: Path, *, seed: int = 0) -> str:
    """`gridflex credit fit` on the store's payment book (see `fit_credit_book_file`)."""
    import tempfile

    from scenarios.credit_fit import fit_credit_book_file
    from scenarios.store import open_store
    from scenarios.store_queries import payments_frame, record_lineage

    store = open_store(url)
    try:
        with tempfile.TemporaryDirectory() as folder:
            # The book reader validates a file; the copy lives only for the fit.
            book = Path(folder) / "payments.csv"
            payments_frame(store).to_csv(book, index=False)
            summary = fit_credit_book_file(book, out, seed=seed,
                                           source=f"store {store.url}, table payments")
        record_lineage(store, "credit fit", str(out))
    finally:
        store.close()
    return summary
