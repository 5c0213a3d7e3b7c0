"""Data store vs pandas on files: import, then the query of a customer set over 92 days.

    python -m benchmarks.bench_store                                # 100 customers × a year
    python -m benchmarks.bench_store --customers 10000 --days 365   # the issue's size (see below)

Generates a year of 15-min reads (long layout, ``customer_id,timestamp,kwh``) for
``--customers`` meters, writes it as CSV and as Parquet, imports the CSV with the product path
(`scenarios.store_imports.import_file`: the project's reader, screening, quarantine, one
transaction) into a DuckDB store, and then selects ``--share`` of the customers over 92 days
(the issue: 3,000 of 10,000) three ways, each best of ``--repeats``:

- store, typed: `scenarios.store_queries.meter_values` (parameterized SQL, selection in the
  database; typed columns, as the pandas peers return);
- store, screening text: `scenarios.store_queries.meter_frame` (the same selection returned as
  the text frame screening reads, which runs use);
- pandas CSV: ``read_csv`` with typed columns, then the same selection in pandas;
- pandas Parquet: ``read_parquet`` with the selection pushed down as ``filters``.

Reported: seconds, rows per second, disk of CSV / Parquet / store, and the peak resident memory
of the process (which includes generating the data; the import alone is measured by running
``gridflex store import meter`` on the kept CSV under ``/usr/bin/time -v``). The import reads
and inserts long CSVs in chunks of `scenarios.store_imports.CHUNK_ROWS` rows and screens in
batches of meters, so its memory does not grow with the file; the import rate gives a linear
estimate for the issue's 350 M rows (an estimate, not a measurement).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def generate(folder: Path, customers: int, days: int, seed: int = 7) -> tuple[Path, Path, int]:
    """CSV and Parquet of ``customers`` × ``days`` of 15-min reads; returns paths and rows."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2025-01-01", periods=days * 96, freq="15min")
    text = stamps.strftime("%Y-%m-%d %H:%M").to_numpy()
    hour = (stamps.hour + stamps.minute / 60).to_numpy()
    shape = 0.1 + 0.2 * np.exp(-((hour - 19.0) ** 2) / 8.0)
    csv, parquet = folder / "reads.csv", folder / "reads.parquet"
    parts = []
    with csv.open("w", encoding="utf-8") as handle:
        handle.write("customer_id,timestamp,kwh\n")
        for c in range(customers):
            kwh = np.round(shape * rng.lognormal(0.0, 0.3, len(stamps)), 4)
            part = pd.DataFrame({"customer_id": f"MTR-{c:06d}", "timestamp": text, "kwh": kwh})
            part.to_csv(handle, header=False, index=False)
            parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame.to_parquet(parquet, index=False)
    return csv, parquet, len(frame)


def _best(fn, repeats: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def _disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--share", type=float, default=0.3, help="share of customers queried")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="keep the data in this folder")
    args = parser.parse_args()

    from scenarios.store import open_store
    from scenarios.store_imports import import_file
    from scenarios.store_queries import meter_frame, meter_values

    folder = Path(tempfile.mkdtemp(prefix="bench-store-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    csv, parquet, rows = generate(folder, args.customers, args.days)
    print(f"generated {rows:,} rows ({args.customers} customers × {args.days} days) in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)

    store = folder / "store"
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    import_file(store, "meter", csv)
    import_s = time.perf_counter() - t0
    print(f"import (read + screen + quarantine + insert, one transaction): {import_s:.1f} s, "
          f"{rows / import_s:,.0f} rows/s", flush=True)

    ids = [f"MTR-{c:06d}" for c in range(0, args.customers, max(1, round(1 / args.share)))]
    start = pd.Timestamp("2025-01-01") + pd.Timedelta(days=max(0, (args.days - 92) // 2))
    end = start + pd.Timedelta(days=92)
    wanted = set(ids)

    def from_store() -> int:
        opened = open_store(store)
        try:
            return len(meter_frame(opened, ids, start, end))
        finally:
            opened.close()

    def from_store_typed() -> int:
        opened = open_store(store)
        try:
            return len(meter_values(opened, ids, start, end))
        finally:
            opened.close()

    def from_csv() -> int:
        frame = pd.read_csv(csv, dtype={"customer_id": str, "kwh": np.float64},
                            parse_dates=["timestamp"])
        pick = frame["customer_id"].isin(wanted) & (frame["timestamp"] >= start) & (
            frame["timestamp"] < end)
        return int(pick.sum())

    def from_parquet() -> int:
        frame = pd.read_parquet(parquet, filters=[("customer_id", "in", ids),
                                                  ("timestamp", ">=", start),
                                                  ("timestamp", "<", end)])
        return len(frame)

    results = {}
    for name, fn in (("store, typed (meter_values)", from_store_typed),
                     ("store, screening text (meter_frame)", from_store), ("pandas CSV", from_csv),
                     ("pandas Parquet", from_parquet)):
        seconds, selected = _best(fn, args.repeats)
        results[name] = (seconds, selected)
        print(f"query {len(ids)} customers × 92 days, {name}: {seconds:.2f} s "
              f"({selected:,} rows)", flush=True)
    counts = {v[1] for v in results.values()}
    assert len(counts) == 1, f"the three ways selected different rows: {results}"
    print(f"disk: CSV {_disk(csv) / 1e6:,.0f} MB, Parquet {_disk(parquet) / 1e6:,.0f} MB, "
          f"store {_disk(store) / 1e6:,.0f} MB")
    full = 350e6
    print(f"linear estimate for {full / 1e6:.0f} M rows at the measured import rate: "
          f"{full / (rows / import_s) / 3600:.1f} h (estimate, not measured)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB; load average {os.getloadavg()[0]:.1f} (machine shared)")
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
