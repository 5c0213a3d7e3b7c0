"""Plots (PNG) and a self-contained HTML report of one run."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import xarray as xr

from scenarios.schema import Scenario

PLOTS: dict[str, str] = {
    "feeder_load.png": "Feeder-head load before and after the offers",
    "voltage_envelope.png": "Voltage envelope over all buses",
    "offers_by_tier.png": "Offers made, by credit tier",
    "daily_peaks.png": "Daily feeder peak before, planned and realized (P10–P90), called days marked",
}


def write_report(scenario: Scenario, result: xr.Dataset, kpis: dict[str, float], folder: Path) -> None:
    """Write the plots and `report.html` (plots embedded) into `folder`."""
    import matplotlib

    matplotlib.use("Agg")
    written = [plot_feeder_load(result, folder / "feeder_load.png", scenario),
               plot_voltage_envelope(result, folder / "voltage_envelope.png", scenario)]
    if "p_slack_planned_mw" in result:
        written.insert(0, plot_daily_peaks(result, folder / "daily_peaks.png", scenario))
    if "offers_by_tier" in result:
        written.append(plot_offers_by_tier(result, folder / "offers_by_tier.png"))
    (folder / "report.html").write_text(_html(scenario, result, kpis, written), encoding="utf-8")


def _after_band(result: xr.Dataset, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    if name not in result:
        return None
    values = result[name].values
    return tuple(np.percentile(values, q, axis=0) for q in (10, 50, 90))  # type: ignore[return-value]


def plot_feeder_load(result: xr.Dataset, path: Path, scenario: Scenario) -> Path:
    """Feeder-head active load [kW] before, and P10–P90 / P50 of the replays after."""
    import matplotlib.pyplot as plt

    time = result["time"].values
    fig, ax = plt.subplots(figsize=(11, 4.2), constrained_layout=True)
    ax.plot(time, result["p_slack_mw"].values * 1000.0, color="0.35", lw=1.0, label="before")
    band = _after_band(result, "p_slack_after_mw")
    if band is not None:
        p10, p50, p90 = (b * 1000.0 for b in band)
        ax.fill_between(time, p10, p90, color="tab:blue", alpha=0.25, lw=0, label="after, P10–P90")
        ax.plot(time, p50, color="tab:blue", lw=1.0, label="after, P50")
    if "event_step" in result:
        _shade(ax, time, result["event_step"].values, "tab:orange", "events")
    ax.set_ylabel("feeder-head load [kW]")
    ax.set_title(f"{scenario.name}: feeder load")
    ax.legend(loc="upper left", ncols=4, fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def daily_peaks(result: xr.Dataset) -> dict[str, np.ndarray]:
    """Per day: the peak before, planned (the plan's expected head load) and realized (P10,
    P50, P90 over the draws of each draw's own daily peak) [kW], and whether an event was
    called; over converged steps only."""
    import pandas as pd

    day = pd.DatetimeIndex(result["time"].values).normalize()
    ok = result["converged"].values.astype(bool)

    def per_day(values: np.ndarray) -> np.ndarray:
        """[..., time] → [..., day] daily maxima."""
        masked = np.atleast_2d(np.where(ok, values, -np.inf))
        daily = pd.DataFrame(masked.T, index=day).groupby(level=0).max().to_numpy().T
        return daily.reshape(np.shape(values)[:-1] + (daily.shape[-1],))

    days = np.unique(day)
    out = {"day": days,
           "before": per_day(result["p_slack_mw"].values * 1000.0),
           "planned": per_day(result["p_slack_planned_mw"].values * 1000.0)}
    draws = per_day(result["p_slack_after_mw"].values * 1000.0)      # [draw, day]
    out["p10"], out["p50"], out["p90"] = (np.percentile(draws, q, axis=0) for q in (10, 50, 90))
    if "event_step" in result:
        out["called"] = pd.Series(result["event_step"].values, index=day).groupby(level=0).any(
        ).reindex(days).to_numpy()
    return out


def plot_daily_peaks(result: xr.Dataset, path: Path, scenario: Scenario) -> Path:
    """Per day: peak before, planned and realized (P50 with the P10–P90 band), called days
    marked — where the promise held and where it did not."""
    import matplotlib.pyplot as plt

    peaks = daily_peaks(result)
    days = peaks["day"]
    fig, ax = plt.subplots(figsize=(11, 4.2), constrained_layout=True)
    ax.plot(days, peaks["before"], "o-", color="0.35", ms=3, lw=1.0, label="before")
    ax.plot(days, peaks["planned"], "s--", color="tab:orange", ms=3, lw=1.0, label="planned")
    ax.fill_between(days, peaks["p10"], peaks["p90"], color="tab:blue", alpha=0.25, lw=0,
                    label="realized, P10–P90")
    ax.plot(days, peaks["p50"], "o-", color="tab:blue", ms=3, lw=1.0, label="realized, P50")
    if "called" in peaks and peaks["called"].any():
        called = peaks["called"].astype(bool)
        ax.plot(days[called], peaks["before"][called], "v", color="tab:red", ms=7,
                label="event called")
    ax.set_ylabel("daily feeder-head peak [kW]")
    ax.set_title(f"{scenario.name}: daily peaks (the window's peak is the highest of them)")
    ax.legend(loc="best", ncols=5, fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_voltage_envelope(result: xr.Dataset, path: Path, scenario: Scenario) -> Path:
    """Lowest and highest bus voltage [p.u.] per step, before and after (P50 draw)."""
    import matplotlib.pyplot as plt

    time = result["time"].values
    vm = result["vm_pu"].values
    fig, ax = plt.subplots(figsize=(11, 4.2), constrained_layout=True)
    ax.fill_between(time, np.nanmin(vm, axis=1), np.nanmax(vm, axis=1), color="0.6", alpha=0.4,
                    lw=0, label="before: min–max over buses")
    if "vm_min_after_pu" in result:
        ax.plot(time, np.median(result["vm_min_after_pu"].values, axis=0), color="tab:blue",
                lw=0.9, label="after: lowest (median of draws)")
        ax.plot(time, np.median(result["vm_max_after_pu"].values, axis=0), color="tab:green",
                lw=0.9, label="after: highest (median of draws)")
    for limit in (scenario.limits.vm_min_pu, scenario.limits.vm_max_pu):
        ax.axhline(limit, color="tab:red", ls="--", lw=0.8)
    ax.set_ylabel("voltage [p.u.]")
    ax.set_title(f"{scenario.name}: voltage envelope")
    ax.legend(loc="lower left", fontsize=8, ncols=3)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_offers_by_tier(result: xr.Dataset, path: Path) -> Path:
    """Stacked bars: customers per offer within each credit tier."""
    import matplotlib.pyplot as plt

    counts = result["offers_by_tier"].values
    offers = result["offer"].values.astype(str)
    tiers = result["tier"].values.astype(str)
    fig, ax = plt.subplots(figsize=(8, 4.2), constrained_layout=True)
    bottom = np.zeros(len(tiers))
    cmap = plt.get_cmap("tab20")
    for k, name in enumerate(offers):
        if counts[:, k].sum() == 0:
            continue
        ax.bar(tiers, counts[:, k], bottom=bottom, label=name, color=cmap(k % 20))
        bottom += counts[:, k]
    ax.set_xlabel("credit tier")
    ax.set_ylabel("customers")
    ax.set_title("Offers made, by credit tier")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _shade(ax, time: np.ndarray, mask: np.ndarray, color: str, label: str) -> None:
    """Shade the spans where `mask` is true."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    first = True
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        ax.axvspan(time[start], time[min(stop, len(time) - 1)], color=color, alpha=0.15, lw=0,
                   label=label if first else None)
        first = False


def _findings(result: xr.Dataset) -> str:
    """Planning rounds and the network elements the offers cannot fix (a finding)."""
    import json

    parts = []
    rounds = json.loads(result.attrs.get("planning_rounds", "[]") or "[]")
    if rounds:
        head = "".join(f"<th>{html.escape(k)}</th>" for k in rounds[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values())
                       + "</tr>" for r in rounds)
        parts.append(f"<h2>Optimizer rounds</h2><table><tr>{head}</tr>{body}</table>")
    unfixed = [u for u in str(result.attrs.get("unfixed_violations", "")).split("; ") if u]
    if unfixed:
        items = "".join(f"<li>{html.escape(u)}</li>" for u in unfixed)
        parts.append("<h2>Limits the offers cannot fix</h2><p>With the offered flexibility the "
                     f"plan's expected load still breaks these limits:</p><ul>{items}</ul>")
    return "\n".join(parts)


def _html(scenario: Scenario, result: xr.Dataset, kpis: dict[str, float], plots: list[Path]) -> str:
    from scenarios.pipeline import KPI_LABELS

    rows = "\n".join(
        f"<tr><td>{html.escape(KPI_LABELS.get(k, k))}</td><td class=num>{v:,.3f}</td></tr>"
        for k, v in kpis.items()
    )
    solver = "\n".join(
        f"<tr><td>{html.escape(k.removeprefix('solver_'))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in result.attrs.items()
        if k.startswith("solver_")
    )
    images = "\n".join(
        f"<figure><img alt='{html.escape(PLOTS.get(p.name, p.name))}' "
        f"src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'>"
        f"<figcaption>{html.escape(PLOTS.get(p.name, p.name))}</figcaption></figure>"
        for p in plots
    )
    design_days = result.attrs.get("design_days", "")
    notes = "".join(f"<p class=note>{html.escape(str(result.attrs[key]))}</p>"
                    for key in ("credit_note",) if result.attrs.get(key))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>gridflex: {html.escape(scenario.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 12px; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; }}
figcaption {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>{html.escape(scenario.name)}</h1>
<p>{html.escape(scenario.description)}</p>
<p>Network <code>{html.escape(scenario.network.source)}</code>; {result.sizes.get('customer', 0)}
customers; {scenario.time.days} days from {scenario.time.start} at {scenario.time.step_min} min;
seed {scenario.seed}. {('Design days: ' + html.escape(str(design_days))) if design_days else ''}</p>
<h2>Key figures</h2>
<table><tr><th>KPI</th><th>value</th></tr>
{rows}
</table>
{_findings(result)}
{('<h2>Solver</h2><table>' + solver + '</table>') if solver else ''}
{('<h2>Notes</h2>' + notes) if notes else ''}
<h2>Plots</h2>
{images}
<p style="color:#777;font-size:0.85em">Every peak is over the same steps: the whole window.
Planned figures are the optimizer's expectation of the window (the same behaviour model the
replay samples, at objective.peak_quantile); P10/P50/P90 come from
{result.sizes.get('draw', 0)} Monte-Carlo replays (acceptance, delivery, fatigue, rebound)
through the AC power flow over the whole window.</p>
</body></html>
"""
