"""Line thermal and bus voltage rows for the offer optimizer, from the real power flow.

Sensitivities come from the batched AC power flow itself: at the design step where an element
is most loaded (a line) or furthest outside its band (a bus), every load element's active
power is raised by a small step at its own power factor, all perturbations solved as one batch
of "time" steps, and the change of each watched line's loading and bus's voltage per kW is read
off (a forward-difference Jacobian of the full AC model, transformers included). The rows are
linear around that step and re-checked by the full power flow of the expected load after each
solve (`scenarios.planning`) and of every replay draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenarios.schema import Scenario

#: A line is watched from this share of its loading limit on a design step [-].
WATCH_LINE_SHARE = 0.9
#: A bus is watched from this distance to its voltage band on a design step [p.u.].
WATCH_VOLTAGE_PU = 0.005
#: Perturbation of a load element's active power [kW] (at least; 1 % of its load above).
PERTURBATION_KW = 1.0


@dataclass(frozen=True)
class Watched:
    """Line and bus positions (in the power flow's ``line``/``bus`` order) with rows."""

    lines: np.ndarray  # [l] int64
    buses: np.ndarray  # [b] int64


def violated_elements(pf, scenario: Scenario, steps: np.ndarray) -> Watched:
    """Lines and buses outside their limits on the given steps of a power-flow result."""
    ok = pf["converged"].values.astype(bool)
    steps = steps[ok[steps]]
    limits = scenario.limits
    with np.errstate(invalid="ignore"):
        lines = np.flatnonzero(
            (pf["line_loading_pct"].values[steps] > limits.line_loading_max_pct).any(axis=0))
        vm = pf["vm_pu"].values[steps]
        buses = np.flatnonzero(((vm < limits.vm_min_pu) | (vm > limits.vm_max_pu)).any(axis=0))
    return Watched(lines.astype(np.int64), buses.astype(np.int64))


def near_limit_elements(pf, scenario: Scenario, steps: np.ndarray) -> Watched:
    """Lines within `WATCH_LINE_SHARE` of their limit and buses within `WATCH_VOLTAGE_PU` of
    the band on the given steps (the rows worth giving the optimizer up front)."""
    ok = pf["converged"].values.astype(bool)
    steps = steps[ok[steps]]
    limits = scenario.limits
    with np.errstate(invalid="ignore"):
        loading = pf["line_loading_pct"].values[steps]
        lines = np.flatnonzero(
            (loading > WATCH_LINE_SHARE * limits.line_loading_max_pct).any(axis=0))
        vm = pf["vm_pu"].values[steps]
        near = ((vm < limits.vm_min_pu + WATCH_VOLTAGE_PU)
                | (vm > limits.vm_max_pu - WATCH_VOLTAGE_PU))
        buses = np.flatnonzero(near.any(axis=0))
    return Watched(lines.astype(np.int64), buses.astype(np.int64))


def merge(a: Watched, b: Watched) -> Watched:
    return Watched(np.union1d(a.lines, b.lines).astype(np.int64),
                   np.union1d(a.buses, b.buses).astype(np.int64))


def network_fields(feeder, scenario: Scenario, steps: np.ndarray, watched: Watched
                   ) -> dict[str, object]:
    """`OfferProblem` fields of the line and voltage rows for the watched elements.

    Parameters
    ----------
    feeder
        `scenarios.feeder.FeederModel` with its base-case power flow.
    steps
        Window positions of the design steps (the rows' ``t``).
    watched
        Lines and buses to give rows.

    Returns
    -------
    dict
        ``line_customer[l, n]``, ``line_base_kw[t, l]``, ``line_limit_kw[l]`` (loading in
        active-power equivalents: loading [%] × ``c_l`` with ``c_l`` [kW/%] the inverse of the
        line's largest loading sensitivity, so the most effective customer's coefficient is 1),
        ``voltage_sensitivity_pu_per_kw[b, n]``, ``voltage_base_pu[t, b]``, ``voltage_min_pu``,
        ``voltage_max_pu``; empty when nothing is watched.
    """
    if watched.lines.size == 0 and watched.buses.size == 0:
        return {}
    before = feeder.before
    limits = scenario.limits
    loading = before["line_loading_pct"].values
    vm = before["vm_pu"].values
    ok = before["converged"].values.astype(bool)
    good = steps[ok[steps]] if ok[steps].any() else steps
    # Each element's sensitivity is taken where it is closest to (or furthest past) its limit.
    line_step = good[np.nanargmax(np.nan_to_num(loading[good][:, watched.lines], nan=-1.0),
                                  axis=0)] if watched.lines.size else np.zeros(0, np.int64)
    gap = np.maximum(limits.vm_min_pu - vm[good][:, watched.buses],
                     vm[good][:, watched.buses] - limits.vm_max_pu)
    bus_step = (good[np.nanargmax(np.nan_to_num(gap, nan=-np.inf), axis=0)]
                if watched.buses.size else np.zeros(0, np.int64))
    d_line = np.zeros((watched.lines.size, feeder.incidence.shape[0]))
    d_bus = np.zeros((watched.buses.size, feeder.incidence.shape[0]))
    for step in np.unique(np.r_[line_step, bus_step]).astype(np.int64):
        dl, dv = _perturbed(feeder, int(step))
        d_line[line_step == step] = dl[:, watched.lines[line_step == step]].T
        d_bus[bus_step == step] = dv[:, watched.buses[bus_step == step]].T
    position = _load_position(feeder)
    fields: dict[str, object] = {}
    if watched.lines.size:
        top = np.max(np.abs(d_line), axis=1)
        scale = np.where(top > 0, 1.0 / np.maximum(top, 1e-12), 1.0)     # [kW/%]
        fields["line_customer"] = d_line[:, position] * scale[:, None]
        fields["line_base_kw"] = np.nan_to_num(loading[steps][:, watched.lines]) * scale[None, :]
        fields["line_limit_kw"] = limits.line_loading_max_pct * scale
    if watched.buses.size:
        fields["voltage_sensitivity_pu_per_kw"] = d_bus[:, position]
        fields["voltage_base_pu"] = np.nan_to_num(vm[steps][:, watched.buses], nan=1.0)
        fields["voltage_min_pu"] = limits.vm_min_pu
        fields["voltage_max_pu"] = limits.vm_max_pu
    return fields


def _load_position(feeder) -> np.ndarray:
    """Load-element position of each customer."""
    incidence = feeder.incidence.tocsc()
    position = np.zeros(incidence.shape[1], dtype=np.int64)
    counts = np.diff(incidence.indptr)
    position[counts > 0] = incidence.indices[incidence.indptr[:-1][counts > 0]]
    return position


def _perturbed(feeder, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-kW change of every line's loading [%/kW] and bus voltage [p.u./kW] for one extra kW
    of load at each load element, at one step: ``[load, line]``, ``[load, bus]``."""
    from sim.powerflow import run_timeseries

    p = feeder.profiles["p_kw"].values[:, step:step + 1]
    q = feeder.profiles["q_kvar"].values[:, step:step + 1]
    load_p, load_q = feeder.load_injections(p, q)            # [1, m] MW
    m = load_p.shape[1]
    delta_kw = np.maximum(PERTURBATION_KW, 0.01 * np.abs(load_p[0]) * 1000.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tan_phi = np.where(np.abs(load_p[0]) > 1e-9, load_q[0] / load_p[0], 0.0)
    rows_p = np.repeat(load_p, m + 1, axis=0)
    rows_q = np.repeat(load_q, m + 1, axis=0)
    rows_p[np.arange(1, m + 1), np.arange(m)] += delta_kw / 1000.0
    rows_q[np.arange(1, m + 1), np.arange(m)] += tan_phi * delta_kw / 1000.0
    sgen = np.repeat(feeder.sgen_p_mw[step:step + 1], m + 1, axis=0)
    pf = run_timeseries(feeder.net, rows_p, rows_q, sgen)
    loading = pf["line_loading_pct"].values
    vm = pf["vm_pu"].values
    d_line = np.nan_to_num((loading[1:] - loading[0]) / delta_kw[:, None])
    d_bus = np.nan_to_num((vm[1:] - vm[0]) / delta_kw[:, None])
    return d_line, d_bus


def drop_unreachable(fields: dict[str, object], delta_kw: np.ndarray, eligible: np.ndarray,
                     names: tuple[np.ndarray, np.ndarray]) -> tuple[dict[str, object], list[str]]:
    """Release the rows no assignment can meet, and say by how much each misses.

    A row ``lower ≤ base[t,e] + Σ_i W[e,i]·Δ[i,k_i,t] ≤ upper`` is out of reach when even every
    customer on the offer that moves it most in the right direction
    (``Σ_i max(W⁺·max_k Δ + W⁻·min_k Δ)``, eligible offers, status quo included) cannot bring it
    inside: the offered flexibility cannot fix that element at that step. Such a row is released
    (its base set inside the band so that exact pruning drops it) and named as a finding; the
    others stay hard limits.

    Parameters
    ----------
    names
        Line names and bus names of the watched elements (for the findings).
    """
    fields = dict(fields)
    findings: list[str] = []
    d = np.where(eligible[:, :, None], delta_kw, np.nan)
    d_max = np.nanmax(d, axis=1)   # [n, t]
    d_min = np.nanmin(d, axis=1)
    if "line_customer" in fields:
        w = np.asarray(fields["line_customer"])
        base = np.array(fields["line_base_kw"], dtype=np.float64)
        limit = np.asarray(fields["line_limit_kw"])
        lowest = base + (np.maximum(w, 0) @ d_min + np.minimum(w, 0) @ d_max).T   # [t, l]
        out = lowest > limit[None, :]
        for j in np.flatnonzero(out.any(axis=0)):
            ratio = float(np.max(lowest[out[:, j], j]) / limit[j])
            findings.append(f"line {names[0][j]}: the offers cannot bring its loading below "
                            f"{ratio:.0%} of its limit on {int(out[:, j].sum())} design steps")
        base[out] = 0.0
        fields["line_base_kw"] = base
    if "voltage_sensitivity_pu_per_kw" in fields:
        s = np.asarray(fields["voltage_sensitivity_pu_per_kw"])
        base = np.array(fields["voltage_base_pu"], dtype=np.float64)
        vmin, vmax = float(fields["voltage_min_pu"]), float(fields["voltage_max_pu"])
        highest = base + (np.maximum(s, 0) @ d_max + np.minimum(s, 0) @ d_min).T   # [t, b]
        lowest = base + (np.maximum(s, 0) @ d_min + np.minimum(s, 0) @ d_max).T
        low = highest < vmin
        high = lowest > vmax
        for j in np.flatnonzero(low.any(axis=0)):
            findings.append(f"bus {names[1][j]}: the offers can raise its voltage at most to "
                            f"{highest[low[:, j], j].min():.4f} p.u. (limit {vmin:g}) on "
                            f"{int(low[:, j].sum())} design steps")
        for j in np.flatnonzero(high.any(axis=0)):
            findings.append(f"bus {names[1][j]}: the offers can lower its voltage at most to "
                            f"{lowest[high[:, j], j].max():.4f} p.u. (limit {vmax:g}) on "
                            f"{int(high[:, j].sum())} design steps")
        base[low | high] = 0.5 * (vmin + vmax)
        fields["voltage_base_pu"] = base
    return fields, findings
