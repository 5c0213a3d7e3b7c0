"""Reading from the store: selection by customer set, feeder and time range inside the database
(parameterized queries only), personal fields left behind, and the lineage of each run.

Every read is noted on the `Store` (table, customers, time range, rows, SHA-256 of the rows as
returned); `record_lineage` writes those notes with the run's output into ``lineage``.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
from collections.abc import Sequence

import numpy as np
import pandas as pd

from scenarios.errors import InputError
from scenarios.store import Store, now_utc

# Output folder of the run in progress, for the lineage of reads made deep inside it.
RUN_OUTPUT: contextvars.ContextVar[str] = contextvars.ContextVar("store_run_output", default="")


def register_frame(store: Store, customers: Sequence[str] | None = None,
                   feeder: str | None = None) -> pd.DataFrame:
    """The register's non-personal fields as text, one row per customer (``customer_id`` first).

    ``customers`` selects by ID (each must be in the store), ``feeder`` by the register's
    ``feeder`` field; both together select their intersection.
    """
    query = ("SELECT r.customer_id, r.field, r.value, r.import_id, r.line FROM register r "
             "JOIN register_fields f ON f.field = r.field WHERE NOT f.personal")
    params: list = []
    if customers is not None:
        query += " AND r.customer_id = ANY(?)"
        params.append([str(c) for c in customers])
    if feeder is not None:
        query += (" AND r.customer_id IN (SELECT customer_id FROM register "
                  "WHERE field = 'feeder' AND value = ?)")
        params.append(str(feeder))
    long = store.fetch_frame(query + " ORDER BY r.import_id, r.line", params,
                             ["customer_id", "field", "value", "import_id", "line"])
    if customers is not None:
        _all_known(store, "register", customers, set(long["customer_id"]) | _ids_without_fields(
            store, customers))
    if long.empty and feeder is not None:
        raise InputError(f"store {store.url}, table register, field 'feeder': no customer on "
                         f"feeder '{feeder}'")
    order = long.drop_duplicates("customer_id")["customer_id"]  # the register's row order
    wide = long.pivot(index="customer_id", columns="field", values="value").fillna("")
    wide.columns.name = None
    frame = wide.loc[order.to_numpy()].reset_index()
    if customers is not None:  # in the order asked for
        frame = frame.set_index("customer_id").loc[[str(c) for c in customers]].reset_index()
    _note(store, "register", frame, frame["customer_id"].nunique(), None, None)
    return frame


def _ids_without_fields(store: Store, customers: Sequence[str]) -> set[str]:
    """Customers whose register rows carry only personal fields (still known)."""
    rows = store.execute("SELECT DISTINCT customer_id FROM register WHERE customer_id = ANY(?)",
                         ([str(c) for c in customers],)).fetchall()
    return {r[0] for r in rows}


def _all_known(store: Store, table: str, asked: Sequence[str], found: set[str]) -> None:
    missing = [str(c) for c in asked if str(c) not in found]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise InputError(f"store {store.url}, table {table}, field 'customer_id': "
                         f"{len(missing)} customer(s) not in the store: {shown}")


def meter_frame(store: Store, customers: Sequence[str],
                start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Meter reads of ``customers`` in ``[start, end)`` (local time) as the long text frame
    screening reads (``customer_id, timestamp, kwh``), in the order they were imported."""
    query = "SELECT customer_id, stamp, kwh FROM meter_reads WHERE customer_id = ANY(?)"
    params: list = [[str(c) for c in customers]]
    if start is not None:
        query += " AND ts >= ?"
        params.append(pd.Timestamp(start).to_pydatetime())
    if end is not None:
        query += " AND ts < ?"
        params.append(pd.Timestamp(end).to_pydatetime())
    rows = store.fetch_frame(query + " ORDER BY import_id, line", params,
                             ["customer_id", "timestamp", "kwh"])
    found = set(rows["customer_id"])
    if len(found) < len(set(customers)):  # known customers may have no reads in the range
        known = store.execute("SELECT DISTINCT customer_id FROM meter_reads "
                              "WHERE customer_id = ANY(?)", params[:1]).fetchall()
        _all_known(store, "meter_reads", customers, {r[0] for r in known})
    # repr() of a float reads back as the same float: screening sees the imported value.
    rows["kwh"] = rows["kwh"].astype(np.float64).astype(str)
    _note(store, "meter_reads", rows, len(set(customers)), start, end)
    return rows


def payments_frame(store: Store) -> pd.DataFrame:
    """The payment book as text, in its file order."""
    columns = ["customer_id", "month", "bill_eur", "paid_eur", "days_late",
               "disconnection_notice"]
    frame = store.fetch_frame(f"SELECT {', '.join(columns)} FROM payments ORDER BY line", (),
                              columns)
    if frame.empty:
        raise InputError(f"store {store.url}, table payments: no payment book imported")
    if frame["disconnection_notice"].isna().all():
        frame = frame.drop(columns="disconnection_notice")
    _note(store, "payments", frame, frame["customer_id"].nunique(), None, None)
    return frame


def events_frame(store: Store) -> pd.DataFrame:
    """The events as text, one row per event in file order."""
    long = store.fetch_frame("SELECT line, field, value FROM events ORDER BY line", (),
                             ["line", "field", "value"])
    if long.empty:
        raise InputError(f"store {store.url}, table events: no events imported")
    frame = long.pivot(index="line", columns="field", values="value").reset_index(drop=True)
    frame.columns.name = None
    _note(store, "events", frame, 0, None, None)
    return frame


def _note(store: Store, table: str, frame: pd.DataFrame, customers: int, start, end) -> None:
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    store.reads.append({"table_name": table, "customers": int(customers),
                        "time_from": None if start is None else pd.Timestamp(start).to_pydatetime(),
                        "time_to": None if end is None else pd.Timestamp(end).to_pydatetime(),
                        "rows_read": len(frame), "sha256": digest.hexdigest()})


def record_lineage(store: Store, command: str, output: str) -> int:
    """Write what ``store`` was read for into ``lineage`` (one transaction); return the run ID."""
    if not store.reads:
        return 0
    store.begin()
    try:
        run_id = store.next_id("lineage", "run_id")
        frame = pd.DataFrame(store.reads)
        frame.insert(0, "run_id", run_id)
        frame["at_utc"] = np.datetime64(now_utc(), "us")
        frame["command"] = command
        frame["output"] = output
        store.insert_frame("lineage", frame)
        store.commit()
    except BaseException:
        store.rollback()
        raise
    store.reads.clear()
    return run_id


def pseudonym(customer_id: str, key: str) -> str:
    """Keyed pseudonym of a customer ID: HMAC-SHA-256 (RFC 2104) under ``key``, 16 hex digits.

    The same key gives the same pseudonym in every output; without the key it cannot be
    reversed or recomputed from the ID.
    """
    mac = hmac.new(key.encode("utf-8"), str(customer_id).encode("utf-8"), hashlib.sha256)
    return "p-" + mac.hexdigest()[:16]


def stored_customers(store: Store, feeder: str | None = None) -> list[str]:
    """Customers with meter reads (those on ``feeder`` by the register when given)."""
    if feeder is None:
        rows = store.execute("SELECT DISTINCT customer_id FROM meter_reads ORDER BY customer_id")
    else:
        rows = store.execute(
            "SELECT DISTINCT m.customer_id FROM meter_reads m JOIN register r ON "
            "r.customer_id = m.customer_id WHERE r.field = 'feeder' AND r.value = ? "
            "ORDER BY m.customer_id", (str(feeder),))
    ids = [r[0] for r in rows.fetchall()]
    if not ids:
        where = f" on feeder '{feeder}'" if feeder is not None else ""
        raise InputError(f"store {store.url}, table meter_reads: no customers{where}")
    return ids


def lineage_text(url: str) -> str:
    """The lineage table as text, newest run first."""
    from scenarios.store import open_store

    store = open_store(url)
    try:
        frame = store.fetch_frame(
            "SELECT run_id, at_utc, command, table_name, customers, time_from, time_to, "
            "rows_read, sha256, output FROM lineage ORDER BY run_id DESC, table_name", (),
            ["run", "at_utc", "command", "table", "customers", "from", "to", "rows", "sha256",
             "output"])
    finally:
        store.close()
    if frame.empty:
        return f"store {url}: no runs recorded yet"
    frame["sha256"] = frame["sha256"].str[:12]
    return frame.to_string(index=False)


def meter_values(store: Store, customers: Sequence[str], start: pd.Timestamp,
                 end: pd.Timestamp) -> pd.DataFrame:
    """Typed reads of ``customers`` in ``[start, end)``: ``customer_id``, ``ts`` (naive local),
    ``kwh`` [kWh] as imported (unscreened), for analyses that need no screening text."""
    query = ("SELECT customer_id, ts, kwh FROM meter_reads WHERE customer_id = ANY(?) "
             "AND ts >= ? AND ts < ? ORDER BY import_id, line")
    params = ([str(c) for c in customers], pd.Timestamp(start).to_pydatetime(),
              pd.Timestamp(end).to_pydatetime())
    rows = store.fetch_frame(query, params, ["customer_id", "ts", "kwh"])
    _note(store, "meter_reads", rows, len(set(customers)), start, end)
    return rows
