"""Customer and meter data store: import once, plan many times.

A store is an embedded DuckDB database in one folder (``<folder>/gridflex.duckdb``, nothing to
start) or a PostgreSQL database given by URL (``postgresql://…``); both have the same tables and
the same interface (`open_store`, `Store`). Tables:

- ``meter_reads``: one row per readable meter row as imported — ``customer_id`` (text, as
  screening strips it), ``stamp`` (the timestamp text as written), ``ts`` (the naive local time
  screening reads from it, for selection by time range), ``kwh`` [kWh], ``import_id``, ``line``
  (the row's line in its file; keeps the file's order, which screening's duplicate rule uses);
- ``quarantine``: rows an import rejected, with ``table_name``, ``line``, ``customer_id``,
  ``field``, ``value`` and ``reason`` — never silently dropped;
- ``register``: the customer register as ``customer_id, field, value`` (text; ``import_id``
  and ``line`` keep the register's order), and
  ``register_fields`` saying which fields are personal (they never leave the store:
  `scenarios.store_queries` reads only the others);
- ``payments``: the payment book (``customers.credit_book`` columns, text as written);
- ``events``: past demand-response events (``scenarios.mv`` columns, text as written);
- ``imports``: every import (kind, file, SHA-256, rows kept and quarantined, time);
- ``lineage``: what each run read (table, customers, time range, rows, SHA-256 of the rows)
  and where its result went.

Every query is parameterized; no SQL text is built from user input (table and column names
come from this module only).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scenarios.errors import InputError

STORE_FILE = "gridflex.duckdb"

# Table name → column definitions; portable between DuckDB and PostgreSQL.
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "meter_reads": (("customer_id", "VARCHAR NOT NULL"), ("stamp", "VARCHAR NOT NULL"),
                    ("ts", "TIMESTAMP NOT NULL"), ("kwh", "DOUBLE PRECISION NOT NULL"),
                    ("import_id", "INTEGER NOT NULL"), ("line", "BIGINT NOT NULL")),
    "quarantine": (("import_id", "INTEGER NOT NULL"), ("table_name", "VARCHAR NOT NULL"),
                   ("line", "BIGINT"), ("customer_id", "VARCHAR"), ("field", "VARCHAR"),
                   ("value", "VARCHAR"), ("reason", "VARCHAR NOT NULL")),
    "register": (("customer_id", "VARCHAR NOT NULL"), ("field", "VARCHAR NOT NULL"),
                 ("value", "VARCHAR NOT NULL"), ("import_id", "INTEGER NOT NULL"),
                 ("line", "BIGINT NOT NULL")),
    "register_fields": (("field", "VARCHAR PRIMARY KEY"), ("personal", "BOOLEAN NOT NULL")),
    "payments": (("customer_id", "VARCHAR NOT NULL"), ("month", "VARCHAR NOT NULL"),
                 ("bill_eur", "VARCHAR NOT NULL"), ("paid_eur", "VARCHAR NOT NULL"),
                 ("days_late", "VARCHAR NOT NULL"), ("disconnection_notice", "VARCHAR"),
                 ("line", "BIGINT NOT NULL")),
    "events": (("line", "BIGINT NOT NULL"), ("field", "VARCHAR NOT NULL"),
               ("value", "VARCHAR NOT NULL")),
    "imports": (("import_id", "INTEGER PRIMARY KEY"), ("kind", "VARCHAR NOT NULL"),
                ("source", "VARCHAR NOT NULL"), ("sha256", "VARCHAR NOT NULL"),
                ("rows_kept", "BIGINT NOT NULL"), ("rows_quarantined", "BIGINT NOT NULL"),
                ("at_utc", "TIMESTAMP NOT NULL")),
    "lineage": (("run_id", "INTEGER NOT NULL"), ("at_utc", "TIMESTAMP NOT NULL"),
                ("command", "VARCHAR NOT NULL"), ("table_name", "VARCHAR NOT NULL"),
                ("customers", "BIGINT NOT NULL"), ("time_from", "TIMESTAMP"),
                ("time_to", "TIMESTAMP"), ("rows_read", "BIGINT NOT NULL"),
                ("sha256", "VARCHAR NOT NULL"), ("output", "VARCHAR NOT NULL")),
}


@dataclass
class Store:
    """An open store: a DB-API connection and its dialect (``duckdb`` or ``postgresql``)."""

    url: str
    dialect: str
    connection: Any
    reads: list[dict] = field(default_factory=list)  # what this session read (for lineage)

    def sql(self, text: str) -> str:
        """The query with ``?`` placeholders in this dialect's parameter style."""
        return text.replace("?", "%s") if self.dialect == "postgresql" else text

    def execute(self, text: str, params: tuple | list = ()) -> Any:
        if self.dialect == "duckdb":
            # A DuckDB cursor() is a second connection, outside this one's transaction; and the
            # connection takes no new statement before the last result is consumed.
            return _Rows(self.connection.execute(text, tuple(params)).fetchall())
        cursor = self.connection.cursor()
        cursor.execute(self.sql(text), tuple(params))
        return cursor

    def fetch_frame(self, text: str, params: tuple | list, columns: list[str]) -> pd.DataFrame:
        if self.dialect == "duckdb":  # columnar result straight into pandas
            frame = self.connection.execute(self.sql(text), tuple(params)).df()
            frame.columns = columns
            return frame
        rows = self.execute(text, params).fetchall()
        return pd.DataFrame.from_records(rows, columns=columns)

    def insert_frame(self, table: str, frame: pd.DataFrame) -> None:
        """Append ``frame`` (columns named as in `TABLES`) to ``table``."""
        columns = [c for c, _ in TABLES[table] if c in frame.columns]
        names = ", ".join(columns)
        if self.dialect == "duckdb":
            # DuckDB scans the DataFrame directly (columnar, no per-row round trips).
            self.connection.register("incoming", frame[columns])
            try:
                self.connection.execute(
                    f"INSERT INTO {table} ({names}) SELECT {names} FROM incoming").fetchall()
            finally:
                self.connection.unregister("incoming")
            return
        values = [_python(frame[c]) for c in columns]  # psycopg adapts Python types only
        with self.connection.cursor() as cursor, cursor.copy(
                f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in zip(*values, strict=True):
                copy.write_row(row)

    def begin(self) -> None:
        if self.dialect == "duckdb":
            self.connection.begin()

    def commit(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        self.connection.rollback()

    def close(self) -> None:
        self.connection.close()

    def next_id(self, table: str, column: str) -> int:
        (value,) = self.execute(f"SELECT COALESCE(MAX({column}), 0) + 1 FROM {table}").fetchone()
        return int(value)

    def count(self, table: str) -> int:
        (value,) = self.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        return int(value)


@dataclass
class _Rows:
    """A consumed result, answering like a DB-API cursor."""

    rows: list

    def fetchall(self) -> list:
        return self.rows

    def fetchone(self):
        return self.rows[0] if self.rows else None


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _python(column: pd.Series) -> list:
    """A column as Python values (datetimes, ints, floats, bools, text; None for missing)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return [None if pd.isna(v) else v.to_pydatetime() for v in column]
    return [None if _missing(v) else v for v in column.tolist()]


def open_store(url: str | Path, *, create: bool = False) -> Store:
    """Open the store at ``url`` (a folder for DuckDB, or ``postgresql://…``).

    ``create`` makes the folder and tables when absent (imports); readers need an existing
    store. A server that does not answer, or a folder without a store, is an `InputError`.
    """
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):
        store = _open_postgres(text)
    else:
        folder = Path(text)
        database = folder / STORE_FILE
        if not database.is_file() and not create:
            raise InputError(f"store {folder}: no store here ({STORE_FILE} not found; "
                             "`gridflex store import` creates it)")
        import duckdb

        folder.mkdir(parents=True, exist_ok=True)
        try:
            connection = duckdb.connect(str(database))
        except duckdb.Error as exc:
            raise InputError(f"store {folder}: cannot open ({str(exc).splitlines()[0]})") from None
        store = Store(url=str(folder), dialect="duckdb", connection=connection)
    _create_tables(store, create)
    return store


def _open_postgres(url: str) -> Store:
    try:
        import psycopg
    except ImportError:
        raise InputError(f"store {_redacted(url)}: PostgreSQL needs psycopg "
                         "(pip install 'psycopg[binary]')") from None
    try:
        connection = psycopg.connect(url, connect_timeout=5)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"store {_redacted(url)}: does not answer ({reason})") from None
    return Store(url=_redacted(url), dialect="postgresql", connection=connection)


def _redacted(url: str) -> str:
    """The URL without its password (error messages and lineage must not carry it)."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, user_pass = head.partition("//")
    return f"{scheme}//{user_pass.split(':', 1)[0]}:***@{tail}"


def _create_tables(store: Store, create: bool) -> None:
    # Only the missing ones: a reading role (PostgreSQL planner) may not create tables.
    present = {r[0] for r in store.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    ).fetchall()}
    for table, columns in TABLES.items():
        if table in present:
            continue
        if not create:
            raise InputError(f"store {store.url}, table {table}: missing or not readable by this "
                             "user (`gridflex store import` creates the tables)")
        body = ", ".join(f"{name} {kind}" for name, kind in columns)
        store.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body})")
    store.commit() if store.dialect == "postgresql" else None


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
