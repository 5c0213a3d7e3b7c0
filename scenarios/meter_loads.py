"""Meter-driven customers: measured interval series are the loads of the registered customers.

With ``[customers] source = "meter"`` a scenario names a meter file (any layout
`sim.meter_files` reads) and a register — a customers table (`customers.io` columns) whose
``customer_id`` is the meter ID and whose ``bus`` (or ``load`` element) says where the meter
sits. Then

- every registered meter is screened (`sim.quality`, at its own interval) and its energy is
  moved onto the simulation steps by integrating the meter's cumulative energy, linear within
  each reading (uniform power): energy per step is exact when the grids align and conserved
  whatever the two interval lengths; steps inside long gaps that screening left empty are
  filled with the meter's mean at that time of day, and the run says how many;
- the simulated time is naive local time, with the hour clocks skip in spring and one pass of
  the hour they repeat in autumn: screening interpolates the first and merges the second
  (mean), and the run says how many readings that touched;
- the measured series replace the simulated base load of those customers (``p_kw`` = measured
  net import, ``pv_kw`` = 0 since the meter already nets PV, ``q_kvar`` from the register's
  power factor); the flexible device load the scenario's response model curtails is the
  simulated one for the register's devices (``has_ev``, ``has_heat_pump`` …, e.g. from
  `gridflex calibrate`), capped at the measured load;
- in-service load elements of the net that host no measured customer are filled with
  ``customers.count`` synthetic customers, each element's scaled to that element's share of
  energy: measured energy per rated MW of the measured elements × the element's rated
  ``p_mw`` (when no measured element carries a rating: sized to the element's rated peak, as in
  synthetic runs);
- the run states how many customers and how much energy are measured and synthetic.

A simulated window outside a meter's data, a register meter absent from the meter file and a
register naming an unknown bus or load element are input errors naming file, line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import xarray as xr

from customers.io import read_text_csv
from scenarios.errors import InputError
from scenarios.load import resolve_input_path
from scenarios.schema import Scenario


@dataclass
class MeasuredCustomers:
    """Population of measured and filler customers, and the measured energy per step."""

    population: xr.Dataset           # [customer]: measured first, then synthetic filler
    energy_kwh: np.ndarray           # [measured customer, time] energy per simulated step [kWh]
    notes: list[str] = field(default_factory=list)

    @property
    def measured_count(self) -> int:
        return int(self.energy_kwh.shape[0])


def read_measured(scenario: Scenario, net, time: pd.DatetimeIndex) -> MeasuredCustomers:
    """Screen the meter file, read the register, move the series onto ``time``, add fillers.

    Parameters
    ----------
    scenario
        Scenario with ``customers.source = "meter"``.
    net
        The pandapower net (its ``load`` table places customers).
    time
        Naive local stamps of the simulated window (interval starts, regular).
    """
    from customers.io import customers_from_frame
    from sim.meter_files import read_meter_table
    from sim.quality import ScreeningConfig, screen_meter_data

    cfg = scenario.customers
    if cfg.store is not None:
        from scenarios.store_runs import read_from_store

        meter_path, register_path, raw, register = read_from_store(scenario, net)
    else:
        assert cfg.meter_file is not None and cfg.register_file is not None
        meter_path = resolve_input_path(scenario, cfg.meter_file, "customers.meter_file")
        register_path = resolve_input_path(scenario, cfg.register_file, "customers.register_file")
        register = _read_register(register_path, net)
        raw = read_meter_table(meter_path)
    try:
        clean, report = screen_meter_data(raw, ScreeningConfig(tz=cfg.meter_tz))
    except InputError as error:
        raise InputError(f"{meter_path}: {error}") from None
    by_meter = report.set_index("customer_id")
    steps = by_meter["step_min"]
    series = {cid: part for cid, part in clean.groupby("customer_id", sort=False)}
    names = register["customer_id"].tolist()
    for i, name in enumerate(names):
        if name not in series:
            raise InputError(f"{register_path}, line {i + 2}, column 'customer_id': meter "
                             f"'{name}' has no readings in {meter_path}")
    step = time[1] - time[0] if len(time) > 1 else pd.Timedelta(hours=1)
    energy = np.empty((len(names), len(time)))
    filled = np.zeros(len(names), dtype=np.int64)
    for i, name in enumerate(names):
        part = series[name]
        own = pd.Timedelta(minutes=float(steps[name]))
        first, end = part["timestamp"].iloc[0], part["timestamp"].iloc[-1] + own
        if first > time[0] or end < time[-1] + step:
            raise InputError(
                f"{meter_path}: meter '{name}' has readings from {first} to {end}; the simulated "
                f"window {time[0]} to {time[-1] + step} lies outside them (time.start, time.days)"
            )
        kwh, filled[i] = _filled(part, own, time[0], time[-1] + step)
        energy[i] = window_energy(part["timestamp"].iloc[0], own, kwh, time, step)
    if "annual_kwh" not in register.columns:
        hours = len(time) * step / pd.Timedelta(hours=1)
        register["annual_kwh"] = [f"{max(e, 0.0) / hours * 8760.0:.10g}" for e in energy.sum(axis=1)]
    measured = customers_from_frame(register, register_path, net)
    measured = _label(measured, np.asarray(names, dtype=str), first_id=0, is_measured=True)
    synthetic = _fillers(scenario, net, set(measured["load"].values.tolist()), len(names))
    population = measured if synthetic is None else xr.concat(
        [measured, synthetic], dim="customer", data_vars="all", combine_attrs="override")
    population.attrs.update({"source": "meter", "meter_file": str(meter_path),
                             "register": str(register_path)})
    if cfg.pseudonymize:
        from scenarios.store_runs import pseudonymized

        population = pseudonymized(population, len(names))
    notes = []
    if filled.any():
        notes.append(f"{int(filled.sum())} steps of {int((filled > 0).sum())} meter(s) "
                     "inside long gaps filled with the meter's mean at that time of day")
    # gridflex's time axis is naive local time: it has the hour clocks skip in spring and
    # one pass of the hour they repeat in autumn (screening fills / merges those readings).
    filled_dst = int(by_meter.loc[names, "dst_filled"].sum())
    merged_dst = int(by_meter.loc[names, "dst_merged"].sum())
    if filled_dst or merged_dst:
        notes.append(f"clock changes: {filled_dst} readings of the skipped spring hour "
                     f"interpolated and {merged_dst} repeated autumn readings merged (mean), as "
                     "the simulated time is naive local time")
    resampled = sorted({float(steps[n]) for n in names} - {step / pd.Timedelta(minutes=1)})
    if resampled:
        notes.append(f"meter intervals of {', '.join(f'{m:g}' for m in resampled)} min "
                     f"moved onto {step / pd.Timedelta(minutes=1):g}-min steps (energy conserved)")
    return MeasuredCustomers(population=population, energy_kwh=energy, notes=notes)


def window_energy(start: pd.Timestamp, own: pd.Timedelta, kwh: np.ndarray,
                  time: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    """Energy of each simulated step from readings on a regular grid [kWh].

    The cumulative energy is linear within each reading (uniform power), so a step's energy is
    the difference of the cumulative energy at its two ends: exact on aligned grids, and the
    total over any span of whole readings is conserved.
    """
    cumulative = np.concatenate([[0.0], np.cumsum(kwh)])
    edges_s = np.arange(len(cumulative)) * (own / pd.Timedelta(seconds=1))
    bounds = np.append(time.to_numpy(), (time[-1] + step).to_datetime64())
    at_s = (bounds - start.to_datetime64()) / np.timedelta64(1, "s")
    return np.diff(np.interp(at_s, edges_s, cumulative))


def _filled(part: pd.DataFrame, own: pd.Timedelta, start: pd.Timestamp,
            stop: pd.Timestamp) -> tuple[np.ndarray, int]:
    """The meter's readings with long gaps filled by its mean at that time of day, and how many
    readings inside [start, stop) were filled."""
    kwh = part["kwh"].to_numpy(dtype=np.float64).copy()
    gap = np.isnan(kwh)
    if not gap.any():
        return kwh, 0
    stamps = pd.DatetimeIndex(part["timestamp"])
    slot = (stamps - stamps.normalize()) // own
    typical = pd.Series(kwh).groupby(slot).mean()
    fill = typical.reindex(slot[gap]).to_numpy()
    fallback = np.nanmean(kwh) if np.isfinite(kwh).any() else 0.0
    kwh[gap] = np.where(np.isnan(fill), fallback, fill)
    inside = gap & np.asarray((stamps >= start) & (stamps < stop))
    return kwh, int(inside.sum())


def _read_register(path: Path, net) -> pd.DataFrame:
    """The register as text; a ``load`` column without ``bus`` gives each meter its bus."""
    return place_register(read_text_csv(path), path, net)


def place_register(frame: pd.DataFrame, path: Path | str, net) -> pd.DataFrame:
    """Register text frame checked and placed: a ``load`` column without ``bus`` gives each
    meter its bus (``path`` names the register in errors)."""
    if "customer_id" not in frame.columns:
        raise InputError(f"{path}, column 'customer_id': required column is missing")
    if "bus" not in frame.columns and "load" in frame.columns:
        element = pd.to_numeric(frame["load"], errors="coerce")
        known = element.isin(net.load.index)
        if not known.all():
            i = int(np.flatnonzero(~known.to_numpy())[0])
            raise InputError(f"{path}, line {i + 2}, column 'load': '{frame['load'].iloc[i]}' is "
                             "not a load element of the net")
        frame["bus"] = net.load.loc[element.astype(int), "bus"].astype(int).astype(str).to_numpy()
    frame["customer_id"] = frame["customer_id"].str.strip()
    return frame


def _label(ds: xr.Dataset, names: np.ndarray, *, first_id: int, is_measured: bool) -> xr.Dataset:
    """Renumber customers from ``first_id``, keep only model fields, add text ID and origin."""
    from customers.population import UNITS

    ds = ds[[name for name in UNITS]].assign_coords(
        customer=np.arange(first_id, first_id + ds.sizes["customer"], dtype=np.int64))
    ds["customer_id"] = ("customer", names, {"units": "1", "long_name": "customer id as given"})
    ds["measured"] = ("customer", np.full(len(names), is_measured),
                      {"units": "bool", "long_name": "load from meter data"})
    return ds


def _fillers(scenario: Scenario, net, measured_loads: set[int], first_id: int) -> xr.Dataset | None:
    """``customers.count`` synthetic customers on the in-service elements without meters."""
    from customers.population import (
        assign_loads,
        draw_attributes,
        draw_segments,
        population_dataset,
    )

    table = net.load.copy()
    table["in_service"] = table["in_service"].astype(bool) & ~table.index.isin(list(measured_loads))
    open_elements = table[table["in_service"] & (table["p_mw"] > 0)]
    if open_elements.empty or scenario.customers.count == 0:
        return None
    count = scenario.customers.count
    load, bus = assign_loads(count, SimpleNamespace(load=table), scenario.seed)
    segment = draw_segments(count, scenario, table["p_mw"].reindex(load).to_numpy(np.float64))
    ds = population_dataset(np.arange(count, dtype=np.int64), bus, load, segment,
                            draw_attributes(segment, scenario))
    names = np.array([f"synthetic-{k}" for k in range(count)])
    return _label(ds, names, first_id=first_id, is_measured=False)


def apply_measured(measured: MeasuredCustomers, population: xr.Dataset, profiles: xr.Dataset,
                   net) -> tuple[xr.Dataset, xr.Dataset]:
    """Measured series into the profiles; filler customers scaled to their elements' energy.

    Returns the population (with ``size_factor`` and the measured/synthetic counts and energies
    as attrs, and a ``customers_note``) and the profiles.
    """
    from customers.population import in_service_loads, size_to_network

    step_h = float(profiles.attrs["step_h"])
    m = measured.measured_count
    p = profiles["p_kw"].values.copy()
    q = profiles["q_kvar"].values.copy()
    flexible = profiles["flexible_kw"].values.copy()
    pv = profiles["pv_kw"].values.copy()
    kw = measured.energy_kwh / step_h
    pf = population["power_factor"].values[:m]
    tan_phi = np.sqrt(1.0 - pf**2) / pf
    p[:m], pv[:m] = kw, 0.0
    q[:m] = kw * tan_phi[:, None]
    flexible[:m] = np.minimum(flexible[:m], np.maximum(kw, 0.0))

    factor = np.ones(population.sizes["customer"])
    load = population["load"].values
    index, _, p_mw = in_service_loads(net)
    rated = dict(zip(index.tolist(), p_mw.tolist(), strict=True))
    measured_kwh = float(measured.energy_kwh.sum())
    measured_mw = sum(rated.get(int(e), 0.0) for e in np.unique(load[:m]))
    how = "sized to each element's rated peak"
    if m < len(load):
        if measured_mw > 0 and measured_kwh > 0:
            per_mw = measured_kwh / measured_mw
            how = (f"each element sized to its share of energy ({per_mw / 1000.0:,.1f} kWh per "
                   "rated kW over the window, as on the measured elements)")
            # Net import, as a meter on the element would count it.
            net_kwh = p[m:].sum(axis=1) * step_h
            for element in np.unique(load[m:]):
                rows = np.flatnonzero(load[m:] == element) + m
                simulated = float(net_kwh[rows - m].sum())
                if simulated > 0 and rated.get(int(element), 0.0) > 0:
                    factor[rows] = per_mw * rated[int(element)] / simulated
        else:
            sized = size_to_network(population.isel(customer=slice(m, None)),
                                    profiles.isel(customer=slice(m, None)), net)
            factor[m:] = sized.values
    for values in (p, q, flexible, pv):
        values[m:] *= factor[m:, None]
    scaled = profiles.copy()
    for name, values in (("p_kw", p), ("q_kvar", q), ("flexible_kw", flexible), ("pv_kw", pv)):
        scaled[name] = profiles[name].copy(data=values)
    sized_population = population.copy()
    for name in ("annual_kwh", "pv_kwp", "ev_kwh_per_day", "heat_kw_per_degc", "ac_kw_per_degc"):
        sized_population[name] = population[name] * factor
        sized_population[name].attrs = population[name].attrs
    sized_population["size_factor"] = ("customer", factor,
                                       {"units": "1", "long_name": "network sizing factor"})
    synthetic_kwh = float(p[m:].sum() * step_h)
    total = measured_kwh + synthetic_kwh
    share = measured_kwh / total if total > 0 else 1.0
    elements = len(np.unique(load[m:]))
    note = (f"customers: {m} measured ({measured_kwh:,.0f} kWh, {share:.1%} of the window's "
            f"energy) and {len(load) - m} synthetic ({synthetic_kwh:,.0f} kWh) on {elements} "
            f"load element(s) without meters")
    if m < len(load):
        note += f", {how}"
    sized_population.attrs.update({
        "customers_measured": m, "customers_synthetic": len(load) - m,
        "energy_measured_kwh": measured_kwh, "energy_synthetic_kwh": synthetic_kwh,
        "customers_note": "; ".join([note, *measured.notes]),
    })
    return sized_population, scaled
