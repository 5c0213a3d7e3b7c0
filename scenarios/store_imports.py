"""`gridflex store import KIND FILE`: read a file with the project's readers, screen it and add it
to the store in one transaction (the store is unchanged when anything fails).

Kinds:

- ``meter``: interval reads in any layout `sim.meter_files` reads (long, wide, cumulative);
  rows screening cannot read (customer, timestamp or value) go to ``quarantine`` with the
  field and reason; the kept rows are screened (`sim.quality`) as a whole — a meter switching
  interval length fails the import — and stored with their text stamp and typed local time;
- ``register``: customer register CSV (``customer_id`` and any fields); rows without an ID and
  repeated IDs are quarantined; a customer imported again replaces its earlier fields.
  Fields named in ``personal`` (and the usual personal ones, `PERSONAL_FIELDS`) are marked
  personal: they stay in the store;
- ``payments``: the whole payment book (validated by `customers.credit_book.read_book_csv`),
  replacing the book held before;
- ``events``: past events (validated by `scenarios.mv.read_events`), replacing those held.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from customers.io import read_text_csv
from scenarios.errors import InputError
from scenarios.store import Store, now_utc, open_store

KINDS = ("meter", "register", "payments", "events")
PERSONAL_FIELDS = frozenset({
    "name", "first_name", "last_name", "surname", "address", "street", "postcode", "zip",
    "city", "email", "phone", "iban", "account", "account_number", "date_of_birth", "birth_date",
})


def import_file(url: str | Path, kind: str, path: Path, *, personal: tuple[str, ...] = (),
                tz: str = "Europe/Berlin") -> str:
    """Import ``path`` as ``kind`` into the store at ``url``; return a one-paragraph summary."""
    if kind not in KINDS:
        raise InputError(f"store import: unknown kind '{kind}' (one of {', '.join(KINDS)})")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    store = open_store(url, create=True)
    try:
        store.begin()
        try:
            import_id = store.next_id("imports", "import_id")
            kept, quarantined, note = _IMPORTERS[kind](store, import_id, path, personal, tz)
            store.execute("INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (import_id, kind, str(path), _sha256(path), kept, quarantined, now_utc()))
            store.commit()
        except BaseException:
            store.rollback()
            raise
    finally:
        store.close()
    tail = f"; {quarantined} row(s) quarantined (table quarantine, import {import_id})" \
        if quarantined else ""
    return f"{path}: imported {kept} {kind} row(s) into store {store.url}{tail}{note}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


CHUNK_ROWS = 1_000_000  # rows read, parsed and inserted at a time (bounded memory)


def _meter(store: Store, import_id: int, path: Path, personal, tz: str) -> tuple[int, int, str]:
    from sim.meter_files import iter_long_csv, read_meter_table

    chunks = iter_long_csv(path, CHUNK_ROWS)
    if chunks is None:  # wide, cumulative or Parquet: read whole
        chunks = iter([read_meter_table(path)])
    kept = bad = 0
    for raw in chunks:
        k, b = _insert_reads(store, import_id, raw, tz)
        kept, bad = kept + k, bad + b
    report = _screen_stored(store, import_id, path, tz)
    note = (f"; screening: {report['meters']} meter(s), {report['repaired']} reading(s) it would "
            f"repair, {report['gaps']} in long gaps (repairs are applied when a run reads the "
            "data)")
    return kept, bad, note


def _insert_reads(store: Store, import_id: int, raw: pd.DataFrame, tz: str) -> tuple[int, int]:
    """Parse one chunk as screening does; quarantine unreadable rows, insert the others."""
    from sim.quality import parse_rows

    rows = parse_rows(raw, tz)
    bad = rows["problem"].ne("").to_numpy()
    line = raw.index.to_numpy(np.int64) + 2  # header is line 1 (long layout)
    if bad.any():
        field = rows["problem"][bad].str.split(":").str[0].to_numpy()
        values = [raw[f].iloc[i] if f in raw.columns else "" for f, i in
                  zip(field, np.flatnonzero(bad), strict=True)]
        store.insert_frame("quarantine", pd.DataFrame({
            "import_id": import_id, "table_name": "meter_reads", "line": line[bad],
            "customer_id": rows["customer_id"][bad].to_numpy(), "field": field,
            "value": values, "reason": rows["problem"][bad].to_numpy()}))
    keep = ~bad
    store.insert_frame("meter_reads", pd.DataFrame({
        "customer_id": rows["customer_id"][keep].to_numpy(),
        "stamp": raw["timestamp"][keep].astype(str).str.strip().to_numpy(),
        "ts": rows["timestamp"][keep].to_numpy("datetime64[us]"),
        "kwh": rows["kwh"][keep].to_numpy(np.float64), "import_id": import_id,
        "line": line[keep]}))
    return int(keep.sum()), int(bad.sum())


def _screen_stored(store: Store, import_id: int, path: Path, tz: str) -> dict[str, int]:
    """Screen the imported meters in batches of about `CHUNK_ROWS` rows (screening is per meter);
    a meter switching interval length fails the import."""
    from scenarios.store_queries import meter_frame
    from sim.quality import ScreeningConfig, screen_meter_data

    sizes = store.execute("SELECT customer_id, COUNT(*) FROM meter_reads WHERE import_id = ? "
                          "GROUP BY customer_id ORDER BY customer_id", (import_id,)).fetchall()
    batches: list[list[str]] = [[]]
    rows = 0
    for customer, count in sizes:
        if rows + count > CHUNK_ROWS and batches[-1]:
            batches.append([])
            rows = 0
        batches[-1].append(customer)
        rows += int(count)
    totals = {"meters": len(sizes), "repaired": 0, "gaps": 0}
    for batch in batches:
        if not batch:
            continue
        try:
            clean, _ = screen_meter_data(meter_frame(store, batch), ScreeningConfig(tz=tz))
        except InputError as error:
            raise InputError(f"{path}: {error}") from None
        totals["repaired"] += int((clean["flag"] == "repaired").sum())
        totals["gaps"] += int((clean["flag"] == "gap").sum())
    store.reads.clear()  # screening on import is not a run's lineage
    return totals


def _text_csv(path: Path) -> pd.DataFrame:
    return read_text_csv(path)


def _register(store: Store, import_id: int, path: Path, personal, tz) -> tuple[int, int, str]:
    frame = _text_csv(path)
    if "customer_id" not in frame.columns:
        raise InputError(f"{path}, column 'customer_id': required column is missing")
    if "bus" not in frame.columns and "load" not in frame.columns:
        raise InputError(f"{path}, column 'bus': required column is missing (a register places "
                         "each meter by its bus or load element)")
    unknown = sorted(set(personal) - set(frame.columns))
    if unknown:
        raise InputError(f"--personal: {', '.join(unknown)} not a column of {path}")
    ids = frame["customer_id"].str.strip()
    reason = np.where(ids.eq(""), "customer_id: missing",
                      np.where(ids.duplicated(), "customer_id: repeated (first row kept)", ""))
    bad = reason != ""
    line = np.arange(len(frame)) + 2
    if bad.any():
        store.insert_frame("quarantine", pd.DataFrame({
            "import_id": import_id, "table_name": "register", "line": line[bad],
            "customer_id": ids[bad].to_numpy(), "field": "customer_id",
            "value": frame["customer_id"][bad].to_numpy(), "reason": reason[bad]}))
    kept = frame[~bad].assign(customer_id=ids[~bad], line=line[~bad])
    fields = [c for c in kept.columns if c not in ("customer_id", "line")]
    long = kept.melt(id_vars=["customer_id", "line"], value_vars=fields, var_name="field",
                     value_name="value").assign(import_id=import_id)
    store.execute("DELETE FROM register WHERE customer_id = ANY(?)",
                  (kept["customer_id"].tolist(),))
    store.insert_frame("register", long)
    marked = sorted((set(fields) & PERSONAL_FIELDS) | set(personal))
    store.execute("DELETE FROM register_fields WHERE field = ANY(?)", (fields,))
    store.insert_frame("register_fields", pd.DataFrame(
        {"field": fields, "personal": [f in marked for f in fields]}))
    note = f"; personal field(s) kept in the store: {', '.join(marked)}" if marked else ""
    return len(kept), int(bad.sum()), note


def _payments(store: Store, import_id: int, path: Path, personal, tz) -> tuple[int, int, str]:
    from customers.credit_book import read_book_csv

    read_book_csv(path)  # the whole book must be valid (rectangular, readable), else no import
    frame = _text_csv(path)
    if "disconnection_notice" not in frame.columns:
        frame["disconnection_notice"] = None
    frame["line"] = np.arange(len(frame)) + 2
    store.execute("DELETE FROM payments")
    store.insert_frame("payments", frame)
    return len(frame), 0, "; replaced the payment book held before"


def _events(store: Store, import_id: int, path: Path, personal, tz) -> tuple[int, int, str]:
    from scenarios.mv import read_events

    read_events(path)  # every event must be readable, else no import
    frame = _text_csv(path)
    frame["line"] = np.arange(len(frame)) + 2
    long = frame.melt(id_vars="line", var_name="field", value_name="value")
    store.execute("DELETE FROM events")
    store.insert_frame("events", long)
    return len(frame), 0, "; replaced the events held before"


_IMPORTERS = {"meter": _meter, "register": _register, "payments": _payments, "events": _events}
