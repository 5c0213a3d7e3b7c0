"""The store on a real PostgreSQL server: a temporary cluster this module starts itself with
``initdb``/``pg_ctl`` (skipped, with the reason, when the binaries or psycopg are missing).

The same imports into PostgreSQL and DuckDB must give the same selections; a failed import
leaves the server's tables unchanged; a customer ID crafted as SQL is only a missing customer.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from scenarios.cli import app
from tests.scenarios.test_meter_loads import METERS, _meter_frame

runner = CliRunner()


def _skip_reason() -> str | None:
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg not installed (pip install 'psycopg[binary]')"
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        return "PostgreSQL server binaries initdb/pg_ctl not on PATH"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or _uid("postgres") is None):
        return "running as root without a 'postgres' user to run the cluster as"
    return None


def _uid(name: str) -> int | None:
    import pwd

    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


@pytest.fixture(scope="module")
def postgres_url():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="gridflex-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
        as_user = ["runuser", "-u", "postgres", "--"]
        os.chmod(folder, 0o755)
        shutil.chown(folder, user="postgres")
    data = folder / "data"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run([*as_user, "initdb", "-D", str(data), "-U", "postgres", "-A", "trust",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, "pg_ctl", "-D", str(data), "-w", "-l", str(folder / "log"),
                    "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, "pg_ctl", "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def both_stores(postgres_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pg-files")
    _meter_frame().to_csv(folder / "meter.csv", index=False)
    pd.DataFrame({"customer_id": [m[0] for m in METERS], "bus": [m[1] for m in METERS],
                  "segment": "residential", "feeder": ["F1", "F1", "F2", "F2"],
                  "email": "x@example.org"}).to_csv(folder / "register.csv", index=False)
    duck = str(folder / "duck")
    for store in (postgres_url, duck):
        for kind, name in (("meter", "meter.csv"), ("register", "register.csv")):
            done = runner.invoke(app, ["store", "import", kind, str(folder / name),
                                       "--store", store])
            assert done.exit_code == 0, done.output
    return postgres_url, duck, folder


def _select(url: str, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    from scenarios.store import open_store
    from scenarios.store_queries import meter_frame, register_frame

    store = open_store(url)
    try:
        register = register_frame(store, **kwargs)
        reads = meter_frame(store, register["customer_id"].tolist(),
                            pd.Timestamp("2016-01-10"), pd.Timestamp("2016-01-12"))
    finally:
        store.close()
    return register, reads


def test_postgres_and_duckdb_select_the_same(both_stores):
    pg, duck, _ = both_stores
    for kwargs in ({}, {"feeder": "F2"}, {"customers": ["0012", "C8"]}):
        (reg_pg, reads_pg), (reg_duck, reads_duck) = _select(pg, **kwargs), _select(duck, **kwargs)
        pd.testing.assert_frame_equal(reg_pg, reg_duck)
        pd.testing.assert_frame_equal(reads_pg, reads_duck)
        assert "email" not in reg_pg.columns  # personal: stays in the store


def test_postgres_failed_import_and_crafted_id(both_stores, tmp_path):
    pg, _, folder = both_stores
    from scenarios.store import TABLES, open_store

    def counts() -> dict[str, int]:
        store = open_store(pg)
        try:
            return {t: store.count(t) for t in TABLES if t != "lineage"}
        finally:
            store.close()

    before = counts()
    stamps = pd.date_range("2016-01-01", periods=20, freq="15min").append(
        pd.date_range("2016-01-01 05:00", periods=20, freq="60min"))
    pd.DataFrame({"customer_id": "NEW", "timestamp": stamps.strftime("%Y-%m-%d %H:%M"),
                  "kwh": ["0.5"] * 39 + ["x"]}).to_csv(tmp_path / "mixed.csv", index=False)
    done = runner.invoke(app, ["store", "import", "meter", str(tmp_path / "mixed.csv"),
                               "--store", pg])
    assert done.exit_code == 1 and "switch interval length" in done.output
    crafted = "C7'; DROP TABLE meter_reads; --"
    done = runner.invoke(app, ["store", "calibrate", "--store", pg, "--bus", "12",
                               "--customers", crafted, "-o", str(tmp_path / "c.csv")])
    assert done.exit_code == 1
    assert f"table meter_reads, field 'customer_id': 1 customer(s) not in the store: " \
           f"\"{crafted}\"" in done.output
    assert counts() == before  # quarantine rows of the failed import rolled back too
    done = runner.invoke(app, ["store", "calibrate", "--store", pg, "--bus", "12",
                               "--feeder", "F1", "-o", str(tmp_path / "c.csv")])
    assert done.exit_code == 0, done.output
    lineage = runner.invoke(app, ["store", "lineage", "--store", pg])
    assert "calibrate" in lineage.output and str(tmp_path / "c.csv") in lineage.output


def test_planner_role_reads_without_personal_fields(both_stores):
    """The README's roles: a planner reads selections and records lineage; personal register
    fields are out of its reach even by direct SELECT (row-level security)."""
    import psycopg

    pg, _, _ = both_stores
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    sql = readme.split("CREATE ROLE gridflex_writer", 1)[1].split("```", 1)[0]
    with psycopg.connect(pg, autocommit=True) as admin:
        admin.execute("CREATE ROLE gridflex_writer LOGIN;" + sql.split(";", 1)[1])
    planner = pg.replace("postgres@", "gridflex_planner@", 1)
    register, reads = _select(planner, feeder="F2")
    assert register["customer_id"].tolist() == ["C7", "C8"] and len(reads) > 0
    with psycopg.connect(planner) as conn:
        fields = {r[0] for r in conn.execute("SELECT DISTINCT field FROM register").fetchall()}
    assert "email" not in fields and "bus" in fields
