"""Meter-data commands: screening (`gridflex data check`), calibration (`gridflex calibrate`), M&V (`gridflex mv`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scenarios.errors import InputError
from scenarios.outputs import staged_output

if TYPE_CHECKING:
    from sim.quality import ScreeningConfig


def check_meter_file(meter_file: Path, out: Path | None = None,
                     config: ScreeningConfig | None = None) -> str:
    """Screen a meter file; optionally write the per-customer report CSV. Returns a summary.

    The summary names every interval length found and how many meters have it (each meter is
    screened at its own).
    """
    from sim.quality import REPORT_COUNTS, UNATTRIBUTED, screen_meter_data

    clean, report = screen_meter_data(meter_file, config)
    if out is not None:
        with staged_output(out.parent, owns_folder=False) as staging:
            report.to_csv(staging / out.name, index=False)
    totals = report[list(REPORT_COUNTS)].sum()
    status = report["status"].value_counts()
    lines = [
        f"{meter_file}: {len(report)} customers, {int(totals['rows'])} rows, "
        f"{int((clean['flag'] == 'ok').sum())} clean readings",
        "status: " + ", ".join(f"{k} {v}" for k, v in status.items()),
        "intervals: " + ", ".join(
            f"{minutes:g} min {count} meter(s)" for minutes, count in
            report.loc[report["customer_id"] != UNATTRIBUTED, "step_min"].value_counts()
            .sort_index().items()),
        "found: " + (", ".join(f"{name} {int(totals[name])}" for name in REPORT_COUNTS
                               if name != "rows" and totals[name] > 0) or "nothing"),
    ]
    if out is not None:
        lines.append(f"wrote {out}")
    return "\n".join(lines)


def calibrate_meter_file(
    meter_file: Path,
    out: Path,
    *,
    weather_file: Path | None = None,
    bus: int | None = None,
    buses_file: Path | None = None,
    config: ScreeningConfig | None = None,
) -> str:
    """Screen, fit per-customer parameters and write a customers CSV a scenario can use.

    Parameters
    ----------
    weather_file
        Weather CSV (``timestamp,temperature_c,ghi_w_m2``) covering the meter period; without
        it no temperature sensitivity is fitted.
    bus, buses_file
        Every customer's bus: one bus for all, or a CSV ``customer_id,bus``.
    config
        Screening options (time zone, thresholds).

    Meters of different interval lengths are fitted each on its own grid.
    """
    from customers.calibration import calibrate
    from sim.quality import screen_meter_data

    if (bus is None) == (buses_file is None):
        raise InputError("calibrate: give the customers' bus with exactly one of --bus or --buses")
    clean, _ = screen_meter_data(meter_file, config)
    if clean.empty:
        raise InputError(f"{meter_file}: no readable meter data")
    tz = config.tz if config is not None else None
    temperature = _temperature(weather_file, clean, tz) if weather_file is not None else None
    mapping: int | dict[str, int] = bus if bus is not None else _bus_map(buses_file)
    fitted = calibrate(clean, temperature, bus=mapping)
    # Customers with too little data get no fit; a customers file must not carry them.
    usable = fitted[fitted["annual_kwh"].notna()]
    if usable.empty:
        raise InputError(f"{meter_file}: too little data to calibrate any customer")
    with staged_output(out.parent, owns_folder=False) as staging:
        usable.to_csv(staging / out.name, index=False)
    skipped = fitted.loc[fitted["annual_kwh"].isna(), "customer_id"].tolist()
    note = f" (left out for too little data: {', '.join(map(str, skipped))})" if skipped else ""
    return f"{meter_file}: calibrated {len(usable)} of {len(fitted)} customers{note}; wrote {out}"


def _temperature(weather_file: Path, clean: pd.DataFrame, tz: str | None) -> pd.Series:
    from sim.quality import ScreeningConfig
    from sim.weather import read_weather_csv

    # The finest meter's grid: every meter's stamps lie on it (the temperature is interpolated).
    step = clean.groupby("customer_id")["timestamp"].diff().min()
    if pd.isna(step):
        step = pd.Timedelta(hours=1)
    stamps = pd.date_range(clean["timestamp"].min(), clean["timestamp"].max(), freq=step)
    step_h = float(step / pd.Timedelta(hours=1))
    temperature, _ = read_weather_csv(weather_file, stamps, step_h=step_h,
                                     tz=tz or ScreeningConfig().tz)
    return pd.Series(temperature, index=stamps)


def _bus_map(path: Path | None) -> dict[str, int]:
    assert path is not None
    try:
        frame = pd.read_csv(path, dtype={"customer_id": str}, keep_default_na=False,
                            na_values={"bus": [""]})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(f"{path}: unreadable buses CSV ({error})") from None
    missing = {"customer_id", "bus"} - set(frame.columns)
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    empty = frame["customer_id"].str.strip().eq("") | frame["bus"].isna()
    if empty.any():
        row = int(empty.to_numpy().argmax()) + 2
        raise InputError(f"{path}: line {row}: customer_id and bus must be filled")
    bus = pd.to_numeric(frame["bus"], errors="coerce")
    bad = bus.isna() | (bus != bus.round())
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise InputError(f"{path}: line {row + 2}, column 'bus': '{frame['bus'].iloc[row]}' is "
                         "not a bus index")
    return dict(zip(frame["customer_id"].str.strip(), bus.astype(int), strict=True))


def mv_meter_file(
    meter_file: Path,
    events_file: Path,
    out: Path,
    *,
    weather_file: Path | None = None,
    config: ScreeningConfig | None = None,
    country: str = "DE",
    rebound_h: float = 2.0,
) -> str:
    """M&V of past events (`scenarios.mv`): write ``mv_events.csv``, ``mv_accuracy.csv`` and
    ``mv.png`` into the folder ``out`` — and, when the events give ``contracted_kw``, the
    fitted ``[response]`` table ``response.toml`` (`customers.response_fit`); return a summary
    (delivered kW per event, best baselines and their accuracy, fitted response)."""
    from scenarios.mv import measure_events, read_events
    from sim.quality import screen_meter_data

    events = read_events(events_file)
    clean, _ = screen_meter_data(meter_file, config)
    if clean.empty:
        raise InputError(f"{meter_file}: no readable meter data")
    tz = config.tz if config is not None else None
    temperature = _temperature(weather_file, clean, tz) if weather_file is not None else None
    result = measure_events(clean, events, events_path=events_file, temperature_c=temperature,
                            country=country, rebound_h=rebound_h)
    response = None
    if any(np.isfinite(e.contracted_kw) for e in events):
        from customers.response_fit import fit_response, response_toml

        try:
            response = fit_response(result.events, rebound_h=rebound_h)
        except InputError as error:
            result.notes.append(f"no [response] table: {error}")
    best = result.events[result.events["best"]]
    per_event = best.groupby(["date", "window"])["reduction_kw"].agg(["sum", "count"])
    with staged_output(out) as staging:
        result.events.to_csv(staging / "mv_events.csv", index=False, float_format="%.6g")
        result.accuracy.to_csv(staging / "mv_accuracy.csv", index=False, float_format="%.6g")
        _plot_mv(result, staging / "mv.png")
        if response is not None:
            (staging / "response.toml").write_text(response_toml(response, str(events_file)),
                                                   encoding="utf-8")
    chosen = result.accuracy[result.accuracy["best"]]
    median = result.accuracy.groupby("baseline")["rrmse_pct"].median()
    lines = [f"{meter_file}: {len(per_event)} event(s), {clean['customer_id'].nunique()} meters"]
    lines += [f"  {date} {window}: delivered {row['sum']:,.2f} kW over {int(row['count'])} meter(s)"
              for (date, window), row in per_event.iterrows()]
    lines.append("best baseline: " + ", ".join(
        f"{name} {count}" for name, count in chosen["baseline"].value_counts().items()))
    lines.append("median relative RMSE on non-event days: " + ", ".join(
        f"{name} {value:.1f} %" for name, value in median.items()))
    if response is not None:
        lines.append("fitted response: " + ", ".join(
            f"{name} {response[name]['value']:.3g} ± {response[name]['se']:.2g}"
            for name in ("performance_mean", "performance_sd", "fatigue_per_event",
                         "rebound_share")) + " (response.toml)")
    lines += [f"note: {note}" for note in result.notes]
    lines.append(f"wrote {out}")
    return "\n".join(lines)


def _plot_mv(result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    totals = result.events.groupby(["date", "window", "baseline"])["reduction_kw"].sum().unstack()
    best = (result.events[result.events["best"]].groupby(["date", "window"])["reduction_kw"]
            .sum().reindex(totals.index))
    x = np.arange(len(totals))
    left.bar(x, best.to_numpy(), color="0.75", label="best per meter")
    for name in totals.columns:
        left.plot(x, totals[name].to_numpy(), "o", label=name)
    left.set_xticks(x, [f"{d}\n{w}" for d, w in totals.index], fontsize=7)
    left.set_ylabel("delivered reduction [kW]")
    left.set_title("Events")
    left.legend(fontsize=7)
    names = sorted(result.accuracy["baseline"].unique())
    data = [result.accuracy.loc[result.accuracy["baseline"] == n, "rrmse_pct"].dropna().to_numpy()
            for n in names]
    right.boxplot(data, tick_labels=names)
    right.set_ylabel("relative RMSE on non-event days [%]")
    right.set_title("Baseline accuracy per meter")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def tou_fit_meter_file(
    meter_file: Path,
    moved_file: Path,
    scenario_file: str,
    out: Path,
    *,
    old: str,
    new: str,
    switch: str,
    config: ScreeningConfig | None = None,
) -> str:
    """TOU elasticities from meter data before and after a tariff change
    (`customers.response_fit.fit_tou_elasticity`); write a ``[response]`` table to ``out``."""
    from customers.response_fit import fit_tou_elasticity
    from scenarios.load import load_scenario
    from sim.quality import screen_meter_data

    scenario = load_scenario(scenario_file)
    tariffs = {t.name: t for t in scenario.offers.tariffs}
    for option, name in (("--old", old), ("--new", new)):
        if name not in tariffs:
            raise InputError(f"{option}: tariff '{name}' is not in {scenario_file} "
                             f"(offers.tariffs: {', '.join(tariffs)})")
    day = pd.to_datetime(switch, format="%Y-%m-%d", errors="coerce")
    if pd.isna(day):
        raise InputError(f"--switch: '{switch}' is not YYYY-MM-DD")
    try:
        listed = pd.read_csv(moved_file, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{moved_file}: not a readable CSV ({exc})") from None
    if "customer_id" not in listed.columns:
        raise InputError(f"{moved_file}, column 'customer_id': required column is missing")
    clean, _ = screen_meter_data(meter_file, config)
    moved = set(listed["customer_id"].str.strip())
    missing = sorted(moved - set(clean["customer_id"].unique()))
    if missing:
        row = int(listed.index[listed["customer_id"].str.strip() == missing[0]][0]) + 2
        raise InputError(f"{moved_file}, line {row}, column 'customer_id': meter '{missing[0]}' "
                         f"has no readings in {meter_file}")
    fit = fit_tou_elasticity(clean, moved, day, tariffs[old], tariffs[new],
                             cross_elasticity=scenario.response.cross_elasticity)
    counts = fit.pop("counts")
    lines = [f"# Fitted by gridflex tou-fit from {meter_file}: {int(counts['moved'])} customers "
             f"moved {old} -> {new} on {switch}, {int(counts['stayed'])} stayed (control); "
             f"{int(counts['segments_fell'])} price segment(s) fell.", "[response]"]
    lines += [f"{name} = {v['value']:.4g}  # standard error {v['se']:.2g}" for name, v in fit.items()]
    if "cross_elasticity" not in fit:
        lines.insert(1, "# The price changes do not separate own from cross elasticity: "
                        f"cross_elasticity held at the scenario's "
                        f"{scenario.response.cross_elasticity:g}.")
    with staged_output(out.parent, owns_folder=False) as staging:
        (staging / out.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return "\n".join([*(line for line in lines if line.startswith("#")),
                      *(f"{n} {v['value']:.4g} ± {v['se']:.2g}" for n, v in fit.items()),
                      f"wrote {out}"])
