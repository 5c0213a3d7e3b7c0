"""Turn a pytest-benchmark JSON file into the ratio table: JSON + Markdown (+ stdout).

One row per measured implementation of a case: median and inter-quartile range of the time of
the case's whole work (a peer timed on fewer units is scaled, and marked), throughput, the time
as a multiple of the calibration workload (what the baseline stores), and the ratio to the
peers: on a peer's row ``peer ÷ gridflex`` (how many times gridflex is faster), on gridflex's row
the same against the fastest peer.

Usage::

    python -m benchmarks.report benchmarks/results/quick.json [--out-dir benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.registry import CASES

GRIDFLEX = "gridflex"


@dataclass(frozen=True)
class Row:
    """One implementation of one case; times are for the case's whole work [s]."""

    case: str
    phase: str
    implementation: str
    peer: bool
    median_s: float
    iqr_s: float
    min_s: float
    rounds: int
    units: float
    unit: str
    scale: float
    calibration_s: float
    note: str
    peer_ratio: float | None = None      # peer ÷ gridflex (gridflex row: fastest peer ÷ gridflex)
    fastest_peer: str | None = None
    test: str = ""                       # pytest node id that measured it

    @property
    def throughput(self) -> float:
        return self.units / self.median_s if self.median_s > 0 else math.inf

    @property
    def calibrated(self) -> float:
        """Minimum case time ÷ calibration time (the gate's figure)."""
        return self.min_s / self.calibration_s


def load_rows(results_path: Path) -> tuple[list[Row], dict]:
    """Rows of a pytest-benchmark JSON written with the `benchmarks` harness, and its header."""
    data = json.loads(Path(results_path).read_text())
    rows = []
    for bench in data.get("benchmarks", []):
        extra = bench.get("extra_info", {})
        if "case" not in extra:
            continue
        stats = _own_timings(extra["timed_s"]) if extra.get("timed_s") else bench["stats"]
        scale = float(extra.get("scale", 1.0))
        rows.append(Row(
            case=extra["case"], phase=extra["phase"], implementation=extra["implementation"],
            peer=bool(extra["peer"]), median_s=stats["median"] * scale,
            iqr_s=stats["iqr"] * scale, min_s=stats["min"] * scale, rounds=int(stats["rounds"]),
            units=float(extra["units"]), unit=extra["unit"], scale=scale,
            calibration_s=float(extra["calibration_s"]), note=extra.get("note", ""),
            test=bench.get("fullname", ""),
        ))
    header = {
        "size": _single(rows, data, "size"),
        "slowdown": _single(rows, data, "slowdown"),
        "calibration_version": _single(rows, data, "calibration_version"),
        "numba_threads": _single(rows, data, "numba_threads"),
        "clock": _single(rows, data, "clock"),
        "machine": data.get("machine_info", {}).get("cpu", {}).get("brand_raw")
        or platform.processor(),
        "datetime": data.get("datetime"),
    }
    return with_peer_ratios(rows), header


def _own_timings(seconds: list[float]) -> dict:
    """Statistics of a self-timed benchmark (a peer timing its solve only)."""
    values = np.asarray(seconds, dtype=float)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median": float(median), "iqr": float(q3 - q1), "min": float(values.min()),
            "rounds": len(values)}


def _single(rows: list[Row], data: dict, key: str):
    values = {b["extra_info"].get(key) for b in data.get("benchmarks", [])
              if "case" in b.get("extra_info", {})}
    values.discard(None)
    return values.pop() if len(values) == 1 else sorted(values, key=str) or None


def with_peer_ratios(rows: list[Row]) -> list[Row]:
    """Fill ``peer_ratio`` (peer median ÷ gridflex median) and ``fastest_peer`` per case."""
    own = {r.case: r for r in rows if r.implementation == GRIDFLEX}
    fastest: dict[str, Row] = {}
    for r in rows:
        if r.peer and (r.case not in fastest or r.median_s < fastest[r.case].median_s):
            fastest[r.case] = r
    out = []
    for r in rows:
        ratio, name = None, None
        if r.peer and r.case in own:
            ratio = r.median_s / own[r.case].median_s
        elif not r.peer and r.case in fastest:
            ratio, name = fastest[r.case].median_s / r.median_s, fastest[r.case].implementation
        out.append(Row(**{**asdict(r), "peer_ratio": ratio, "fastest_peer": name}))
    return out


def missing_peers(rows: list[Row], size: str | None) -> list[str]:
    """Expected peers of the cases that ran, which have no row (not installed or skipped)."""
    ran = {(r.case, r.implementation) for r in rows}
    cases_run = {r.case for r in rows}
    return [f"{case.name}: {peer}" for case in CASES if case.name in cases_run
            for peer in case.peers if (case.name, peer) not in ran]


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    for factor, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= factor:
            return f"{seconds / factor:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def format_rate(value: float, unit: str) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g} {prefix}{unit}/s"
    return f"{value:.3g} {unit}/s"


def markdown_table(rows: list[Row], header: dict) -> str:
    lines = [
        f"Benchmark size: **{header['size']}**; clock {header['clock']}; slowdown "
        f"{header['slowdown']}; Numba threads {header['numba_threads']}; calibration "
        f"v{header['calibration_version']}; "
        f"{header['machine']}; {header['datetime']}.",
        "",
        "| case | implementation | median | IQR | throughput | ÷ calibration | peer ÷ gridflex | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in sorted(rows, key=lambda r: (_case_order(r.case), r.peer, r.median_s)):
        if r.peer_ratio is None:
            ratio = "—"
        elif r.peer:
            ratio = f"{r.peer_ratio:.3g}×"
        else:
            ratio = f"{r.peer_ratio:.3g}× vs {r.fastest_peer}"
        lines.append(
            f"| {r.case} | {r.implementation} | {format_seconds(r.median_s)} | "
            f"{format_seconds(r.iqr_s)} | {format_rate(r.throughput, r.unit)} | "
            f"{r.calibrated:.3g} | {ratio} | {r.note} |"
        )
    gone = missing_peers(rows, header["size"])
    if gone:
        lines += ["", "Peers not measured in this run (optional `peers` extra absent, or skipped — "
                      "see the pytest summary): " + "; ".join(gone) + "."]
    lines += ["", "Times are for the case's whole work (peers timed on fewer units are scaled, "
                  "see note). `÷ calibration` = minimum time ÷ the calibration workload timed "
                  "next to it (the figure `benchmarks/baseline.json` stores and `make bench-check` "
                  "gates). `peer ÷ gridflex` > 1: gridflex is that many times faster."]
    return "\n".join(lines) + "\n"


def _case_order(name: str) -> int:
    names = [case.name for case in CASES]
    return names.index(name) if name in names else len(names)


def write_report(results_path: Path, out_dir: Path | None = None) -> tuple[Path, Path, str]:
    """Write ``<stem>-report.json`` and ``<stem>-report.md`` next to the results (or in out_dir)."""
    results_path = Path(results_path)
    rows, header = load_rows(results_path)
    out_dir = Path(out_dir) if out_dir else results_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows, header)
    json_path = out_dir / f"{results_path.stem}-report.json"
    md_path = out_dir / f"{results_path.stem}-report.md"
    json_path.write_text(json.dumps({
        **header,
        "rows": [{**asdict(r), "throughput_per_s": r.throughput, "calibrated": r.calibrated}
                 for r in rows],
        "missing_peers": missing_peers(rows, header["size"]),
    }, indent=2))
    md_path.write_text(table)
    return json_path, md_path, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="pytest-benchmark JSON (--benchmark-json).")
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.results.is_file():
        parser.error(f"{args.results}: no such file (run the benchmarks first)")
    json_path, md_path, table = write_report(args.results, args.out_dir)
    print(table)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
