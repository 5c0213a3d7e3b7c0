"""Batched unbalanced (three-phase) power flow for every time step, on pandapower's own model.

``prepare_grid_3ph`` runs pandapower's ``runpp_3ph`` once on a copy of the net and rebuilds, with
pandapower's own functions and in its order, the three sequence-frame networks that
``runpp_3ph`` iterates on: the zero-, positive- and negative-sequence bus admittance matrices of
``pandapower.pd2ppc`` / ``pandapower.pd2ppc_zero`` (lines with ``r0/x0/c0``, transformers with
their vector group, zero-sequence short-circuit voltage and grounding, the external grid's
negative- and zero-sequence short-circuit impedance as a shunt at the slack). Loads and static
generators (balanced ``load``/``sgen`` split into thirds, ``asymmetric_load``/``asymmetric_sgen``
per phase, wye or delta) become per-phase injection columns, exactly as pandapower's
``_load_mapping`` reads them.

Buses without injection on chains (at most two neighbours in any sequence) are eliminated
exactly (Kron reduction: ``Y_KK − Y_KE·Y_EE⁻¹·Y_EK``) and recovered from their neighbours after
the iteration (``V_E = −Y_EE⁻¹·Y_EK·V_K``): on the IEEE European LV feeder 907 buses become the
load buses, the slack and the branch points. ``solve_3ph`` runs the Numba kernel
(`sim.pf3_kernels.solve_sequence_fixed_point`) over all steps; ``run_timeseries_3ph`` returns the
labelled Dataset: per-phase voltages, the zero-sequence voltage (the model has no separate
neutral conductor: neutral and earth are one, as in pandapower), the voltage unbalance factor,
per-phase and neutral line currents, per-phase transformer currents and loadings.

A step the fixed point does not converge is flagged ``converged = False`` (kept, never dropped).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import xarray as xr

from scenarios.errors import InputError
from sim import pf3_kernels
from sim.dataset import validate
from sim.pf3_reduction import factorize_sequences, reduce_sequences

if TYPE_CHECKING:  # pragma: no cover
    from pandapower.auxiliary import pandapowerNet

VOLTAGE_TOLERANCE_PU = 1e-10
"""The fixed point stops when its estimated voltage error is below this [p.u.] (largest change
of a sequence voltage, or the contraction-scaled change, as `sim.powerflow`)."""

ZERO_SEQUENCE_FIELDS = {
    "line": ("r0_ohm_per_km", "x0_ohm_per_km", "c0_nf_per_km"),
    "trafo": ("vector_group", "vk0_percent", "vkr0_percent", "mag0_percent", "mag0_rx",
              "si0_hv_partial"),
    "ext_grid": ("s_sc_max_mva", "rx_max", "x0x_max", "r0x0_max"),
}
"""Data the sequence-frame model needs beyond the balanced one, per in-service element."""

INJECTION_TABLES = ("load", "asymmetric_load", "sgen", "asymmetric_sgen")
"""Element tables whose power is an input of every step (pandapower ``runpp_3ph`` reads these)."""

# In-service rows of these tables carry power the unbalanced model does not represent per step.
_UNSUPPORTED_TABLES = (
    "gen", "ward", "xward", "storage", "motor", "dcline", "trafo3w", "svc", "ssc", "tcsc", "vsc",
)

@dataclass(frozen=True)
class Grid3ph:
    """Everything the batched unbalanced solver needs, as plain arrays.

    Internal buses are pandapower's (``net._pd2ppc_lookups['bus']``); ``kept`` of them stay in
    the iteration, the others are recovered through ``w`` after it. Injection columns: for each
    table of `INJECTION_TABLES` in order, each element, phases a, b, c (``columns``).
    """

    net: pandapowerNet
    base_mva: float
    bus_index: np.ndarray       # [nb] reported pandapower buses (energized)
    unenergized_buses: np.ndarray
    bus_internal: np.ndarray    # [nb]
    n_internal: int
    ybus: tuple                 # (Y0, Y1, Y2) csr [n_internal²] [p.u.]
    yf: tuple                   # (Yf0, Yf1, Yf2) csr [n_branch, n_internal]
    yt: tuple
    ref: np.ndarray             # internal slack buses
    v_ref: np.ndarray           # positive-sequence slack voltage [p.u.]
    kept: np.ndarray            # [m] internal buses in the iteration
    eliminated: np.ndarray      # [n_internal − m]
    w: tuple                    # per sequence csr [n_elim, m]: V_E = w·V_K
    perm_c: np.ndarray          # [3, m] factor column of each kept bus
    kernel: dict                # factor and injection arrays passed to the kernel
    columns: dict               # table → (first column, element count)
    col_bus: np.ndarray         # [n_col] internal bus (-1 off)
    col_factor: np.ndarray      # [n_col] [1/MVA]
    line_ends: tuple            # (ppci branch, element) of in-service lines
    trafo_ends: tuple
    line_index: np.ndarray
    trafo_index: np.ndarray
    base_kv: np.ndarray         # [n_internal]
    branch_from: np.ndarray     # [n_branch] internal from / to bus of each ppci branch
    branch_to: np.ndarray
    outputs: dict               # arrays of `sim.pf3_kernels.phase_outputs`

    @property
    def n_columns(self) -> int:
        return len(self.col_bus)


def _require_zero_sequence_data(net: pandapowerNet) -> None:
    """InputError naming the first in-service element that lacks a zero-sequence field."""
    for table, fields in ZERO_SEQUENCE_FIELDS.items():
        frame = net[table]
        if len(frame) == 0:
            continue
        active = frame["in_service"].to_numpy(bool)
        for field in fields:
            if field not in frame.columns:
                index = frame.index[np.flatnonzero(active)[0]] if active.any() else None
                if index is not None:
                    raise InputError(f"network: {table} {index} has no '{field}' "
                                     "(zero-sequence data the unbalanced power flow needs)")
                continue
            values = frame[field]
            missing = values.isna().to_numpy() & active
            if field == "vector_group":
                missing |= (values.astype(str).str.strip() == "").to_numpy() & active
            if missing.any():
                raise InputError(f"network: {table} {frame.index[np.flatnonzero(missing)[0]]} has "
                                 f"no '{field}' (zero-sequence data the unbalanced power flow needs)")


def _check_supported(net: pandapowerNet) -> None:
    for table in _UNSUPPORTED_TABLES:
        frame = net[table] if table in net else None
        if frame is None or not hasattr(frame, "columns") or len(frame) == 0:
            continue
        if "in_service" not in frame.columns or frame["in_service"].to_numpy(bool).any():
            raise InputError(f"network: element table '{table}' is not supported by the "
                             "unbalanced power flow")
    if len(net.ext_grid) == 0 or not net.ext_grid.in_service.astype(bool).any():
        raise InputError("network: no in-service ext_grid (slack)")
    _require_zero_sequence_data(net)


def _sequence_models(net: pandapowerNet):
    """pandapower's three ppci (zero, positive, negative), built as ``runpp_3ph`` builds them."""
    from pandapower.build_bus import _add_ext_grid_sc_impedance
    from pandapower.pd2ppc import _pd2ppc_recycle
    from pandapower.pypower.makeYbus import makeYbus

    _, ppci1 = _pd2ppc_recycle(net, 1, recycle=None)
    _, ppci2 = _pd2ppc_recycle(net, 2, recycle=None)
    _add_ext_grid_sc_impedance(net, ppci2)
    _, ppci0 = _pd2ppc_recycle(net, 0, recycle=None)
    ppcis = (ppci0, ppci1, ppci2)
    matrices = [makeYbus(p["baseMVA"], p["bus"], p["branch"]) for p in ppcis]
    return ppcis, [sp.csr_matrix(m[0]) for m in matrices], [sp.csr_matrix(m[1]) for m in matrices], \
        [sp.csr_matrix(m[2]) for m in matrices]


def prepare_grid_3ph(net: pandapowerNet) -> Grid3ph:
    """Build the unbalanced solver model from pandapower's sequence networks (on a copy of ``net``).

    Raises
    ------
    InputError
        An unsupported element is in service, an element lacks zero-sequence data, or pandapower
        cannot solve the net at its own values.
    """
    from pandapower.pf.runpp_3ph import runpp_3ph
    from pandapower.pypower.bustypes import bustypes
    from pandapower.pypower.idx_brch import F_BUS, T_BUS
    from pandapower.pypower.idx_bus import BASE_KV, VA, VM

    _check_supported(net)
    net = copy.deepcopy(net)
    # pandapower's runpp_3ph reads an element's connection from 'type' and skips any other value
    # than 'wye' / 'delta'; SimBench leaves loads' type empty and sgens carry their technology
    # there ('PV'): such elements are connected in wye (pandapower's default) rather than dropped.
    for table in INJECTION_TABLES:
        frame = net[table]
        if len(frame):
            kind = frame["type"] if "type" in frame.columns else None
            if kind is None or not kind.isin(["wye", "delta"]).all():
                net[table]["type"] = ("wye" if kind is None
                                      else kind.where(kind.isin(["wye", "delta"]), "wye"))
    try:
        runpp_3ph(net)
    except Exception as exc:  # LoadflowNotConverged, singular sequence networks, missing data
        raise InputError(f"network: pandapower runpp_3ph cannot solve the net at its own values "
                         f"({type(exc).__name__}: {exc})") from None
    # pandapower's conversion adds auxiliary buses for open line switches to net.bus (runpp_3ph
    # removes them again when it ends): the reported buses are the net's own.
    bus_all = net.bus.index.to_numpy()
    bus_in_service = net.bus.in_service.to_numpy(bool)
    ppcis, ybus, yf, yt = _sequence_models(net)
    ppci1 = ppcis[1]
    base_mva = float(ppci1["baseMVA"])
    n_int = ybus[1].shape[0]
    ref, pv, _ = bustypes(ppci1["bus"], ppci1["gen"])
    if len(pv):
        raise InputError("network: voltage-controlled buses are not supported by the unbalanced "
                         "power flow")
    ref = np.asarray(ref, dtype=np.int64)
    v_ref = ppci1["bus"][ref, VM].real * np.exp(1j * np.deg2rad(ppci1["bus"][ref, VA].real))

    lookup = np.asarray(net._pd2ppc_lookups["bus"], dtype=np.int64)

    def internal_of(buses: np.ndarray) -> np.ndarray:
        idx = lookup[np.asarray(buses, dtype=np.int64)]
        return np.where(idx < n_int, idx, -1)

    bus_int_all = internal_of(bus_all)
    energized = (bus_int_all >= 0) & bus_in_service

    col_bus, col_phase, col_delta, col_factor, columns = _injection_columns(net, internal_of,
                                                                          base_mva)
    kept, eliminated, reduced, w = reduce_sequences(ybus, ref, np.unique(col_bus[col_bus >= 0]))
    kernel, perm_c = factorize_sequences(reduced, kept, ref, v_ref, col_bus, col_phase, col_delta,
                                         col_factor)

    branch_is = np.asarray(ppci1["internal"]["branch_is"], dtype=bool)
    ppci_of_ppc = np.full(len(branch_is), -1, dtype=np.int64)
    ppci_of_ppc[np.flatnonzero(branch_is)] = np.arange(int(branch_is.sum()))
    lookups = net._pd2ppc_lookups["branch"]
    line_ends = _branch_ends(net, "line", lookups, ppci_of_ppc)
    trafo_ends = _branch_ends(net, "trafo", lookups, ppci_of_ppc)
    branch_from = ppci1["branch"][:, F_BUS].real.astype(np.int64)
    branch_to = ppci1["branch"][:, T_BUS].real.astype(np.int64)
    base_kv = ppci1["bus"][:, BASE_KV].real.copy()
    outputs = _output_arrays(net, kept, eliminated, w, yf, yt, branch_from, branch_to, base_kv,
                             base_mva, line_ends, trafo_ends, n_int, ref)
    return Grid3ph(
        net=net, base_mva=base_mva, bus_index=bus_all[energized],
        unenergized_buses=bus_all[~energized], bus_internal=bus_int_all[energized],
        n_internal=n_int, ybus=tuple(ybus), yf=tuple(yf), yt=tuple(yt), ref=ref, v_ref=v_ref,
        kept=kept, eliminated=eliminated, w=w, perm_c=perm_c, kernel=kernel, columns=columns,
        col_bus=col_bus, col_factor=col_factor,
        line_ends=line_ends, trafo_ends=trafo_ends,
        line_index=net.line.index.to_numpy(), trafo_index=net.trafo.index.to_numpy(),
        base_kv=base_kv, branch_from=branch_from, branch_to=branch_to, outputs=outputs,
    )


def _injection_columns(net, internal_of, base_mva):
    """Per-phase injection columns of `INJECTION_TABLES` (pandapower ``_get_elements``): a
    consumption of ``p`` [MW] in a column injects ``p·factor`` [p.u.]."""
    buses, phases, deltas, factors, columns = [], [], [], [], {}
    start = 0
    for table in INJECTION_TABLES:
        frame = net[table]
        n = len(frame)
        columns[table] = (start, n)
        start += 3 * n
        if n == 0:
            continue
        bus = internal_of(frame.bus.to_numpy())
        on = frame.in_service.to_numpy(bool) & (bus >= 0) & net.bus.in_service.reindex(
            frame.bus).to_numpy(bool)
        sign = 1.0 if table.endswith("sgen") else -1.0
        factor = sign * frame.scaling.to_numpy(float) * on / base_mva
        delta = (frame["type"] == "delta").to_numpy(bool)
        buses.append(np.repeat(np.where(on, bus, -1), 3))
        phases.append(np.tile(np.arange(3), n))
        deltas.append(np.repeat(delta, 3))
        factors.append(np.repeat(factor, 3))

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return (cat(buses, np.int64), cat(phases, np.int64), cat(deltas, bool),
            cat(factors, float), columns)


def _branch_ends(net, table, lookups, ppci_of_ppc):
    """(ppci branch, element position) of the table's in-service branches."""
    if table not in lookups or len(net[table]) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    start, stop = lookups[table]
    branch = ppci_of_ppc[np.arange(start, stop)]
    live = branch >= 0
    return branch[live], np.flatnonzero(live)


def phase_injections(grid: Grid3ph, n_steps: int | None = None, **tables) -> tuple:
    """Per-step injection columns ``(p, q)`` ``[T, n_col]`` [MW], [Mvar] from element series.

    Keywords ``<table>_p_mw`` / ``<table>_q_mvar`` for each table of `INJECTION_TABLES`:
    ``load`` and ``sgen`` take ``[T, n]`` (three-phase total, split in thirds as pandapower does)
    or ``[T, n, 3]`` (per phase a, b, c; for a delta element ab, bc, ca); the asymmetric tables
    take ``[T, n, 3]``. Loads are consumption, sgens production (positive). A table left out is 0.
    """
    known = {f"{t}_{x}" for t in INJECTION_TABLES for x in ("p_mw", "q_mvar")}
    unknown = set(tables) - known
    if unknown:
        raise TypeError(f"unknown injection series {sorted(unknown)}")
    given = [np.asarray(v) for v in tables.values() if v is not None]
    if n_steps is None:
        if not given:
            raise InputError("power flow: no injection series given")
        n_steps = given[0].shape[0]
    p = np.zeros((n_steps, grid.n_columns))
    q = np.zeros((n_steps, grid.n_columns))
    for table in INJECTION_TABLES:
        start, n = grid.columns[table]
        for suffix, out in (("p_mw", p), ("q_mvar", q)):
            name = f"{table}_{suffix}"
            value = tables.get(name)
            if value is None:
                continue
            value = np.asarray(value, dtype=float)
            if value.ndim == 2 and not table.startswith("asymmetric") \
                    and value.shape == (n_steps, n):
                value = np.repeat(value / 3.0, 3, axis=1).reshape(n_steps, n, 3)
            if value.shape != (n_steps, n, 3):
                raise InputError(f"power flow: '{name}' has shape {value.shape}, expected "
                                 f"({n_steps}, {n}, 3)" + ("" if table.startswith("asymmetric")
                                                           else f" or ({n_steps}, {n})"))
            out[:, start:start + 3 * n] = value.reshape(n_steps, 3 * n)
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        bad = np.argwhere(~(np.isfinite(p) & np.isfinite(q)))[0]
        raise InputError(f"power flow: injection of step {bad[0]} column {bad[1]} is not finite")
    return p, q


def net_injections(grid: Grid3ph, n_steps: int = 1) -> tuple:
    """The net's own element values as ``n_steps`` identical steps of `phase_injections`."""
    net = grid.net
    series = {}
    for table in INJECTION_TABLES:
        frame = net[table]
        if table.startswith("asymmetric"):
            for x, cols in (("p_mw", ("p_a_mw", "p_b_mw", "p_c_mw")),
                            ("q_mvar", ("q_a_mvar", "q_b_mvar", "q_c_mvar"))):
                values = frame[list(cols)].to_numpy(float) if len(frame) else np.zeros((0, 3))
                series[f"{table}_{x}"] = np.broadcast_to(values, (n_steps, *values.shape))
        else:
            for x in ("p_mw", "q_mvar"):
                values = frame[x].to_numpy(float)
                series[f"{table}_{x}"] = np.broadcast_to(values, (n_steps, len(values)))
    return phase_injections(grid, n_steps, **series)


@dataclass(frozen=True)
class Result3ph:
    """Sequence voltages of the kept buses for every step, and how each step converged."""

    v_kept: np.ndarray      # [T, 3, m] complex sequence voltages (0, 1, 2) of grid.kept [p.u.]
    iterations: np.ndarray  # [T] int32
    converged: np.ndarray   # [T] bool


def solve_3ph(grid: Grid3ph, p: np.ndarray, q: np.ndarray, *, block: int = 16,
              max_iter: int = 100) -> Result3ph:
    """Unbalanced power flow of every step from injection columns (`phase_injections`)."""
    p = np.ascontiguousarray(p, dtype=np.float64)
    q = np.ascontiguousarray(q, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != grid.n_columns or q.shape != p.shape:
        raise InputError(f"power flow: injection columns have shapes {p.shape}, {q.shape}, "
                         f"expected (T, {grid.n_columns})")
    n_steps, m = p.shape[0], len(grid.kept)
    v_out = np.empty((n_steps, 3, m), dtype=complex)
    iterations = np.zeros(n_steps, dtype=np.int32)
    converged = np.zeros(n_steps, dtype=bool)
    k = grid.kernel
    pf3_kernels.solve_sequence_fixed_point(
        p, q, k["col_slot"], k["col_phase"], k["col_delta"], k["col_factor"], k["slot_pos"],
        k["slot_row"], k["c_re"], k["c_im"], k["l_ptr"], k["l_idx"], k["l_re"], k["l_im"],
        k["u_ptr"], k["u_idx"], k["u_re"], k["u_im"], k["d_re"], k["d_im"], k["v0_re"],
        k["v0_im"], VOLTAGE_TOLERANCE_PU, max_iter, block, v_out, iterations, converged)
    # factor column order → kept order
    v_kept = np.stack([v_out[:, s, grid.perm_c[s]] for s in range(3)], axis=1)
    return Result3ph(v_kept, iterations, converged)


def sequence_voltages(grid: Grid3ph, v_kept: np.ndarray) -> np.ndarray:
    """``[T, 3, n_internal]`` complex sequence voltages of every internal bus [p.u.]."""
    n_steps = v_kept.shape[0]
    v = np.empty((n_steps, 3, grid.n_internal), dtype=complex)
    for s in range(3):
        v[:, s, grid.kept] = v_kept[:, s]
        if len(grid.eliminated):
            v[:, s, grid.eliminated] = (grid.w[s] @ v_kept[:, s].T).T
    return v


def run_timeseries_3ph(net_or_grid, *, chunk_steps: int = 2048, dtype=np.float64,
                       block: int = 16, **series) -> xr.Dataset:
    """Unbalanced AC power flow for every time step → the labelled Dataset.

    Parameters
    ----------
    net_or_grid
        A pandapower net with zero-sequence data, or a `Grid3ph` from `prepare_grid_3ph`.
    **series
        Element series as `phase_injections` takes them (``load_p_mw`` … [MW], [Mvar]).
    chunk_steps
        Steps whose full sequence voltages are held at once (bounds working memory).
    dtype
        Floating dtype of the ``[time, bus]`` / ``[time, line]`` outputs.

    Returns
    -------
    xr.Dataset
        ``vm_a_pu``, ``vm_b_pu``, ``vm_c_pu``, ``va_a_degree`` …, ``v0_pu`` (zero-sequence
        voltage magnitude), ``vuf_pct`` (|V2|/|V1|·100) ``[time, bus]``; ``line_i_a_ka`` …,
        ``line_i_n_ka``, ``line_loading_pct`` (worst phase) ``[time, line]``;
        ``trafo_loading_pct`` (worst phase, current based) ``[time, trafo]``; ``converged``,
        ``iterations``, ``p_slack_mw``, ``q_slack_mvar`` ``[time]``; ``vm_pu`` ``[time, bus]``
        is the phase farthest from 1 p.u. (what the balanced limits and satisfaction read).
    """
    grid = net_or_grid if isinstance(net_or_grid, Grid3ph) else prepare_grid_3ph(net_or_grid)
    p, q = phase_injections(grid, **series)
    n_steps = p.shape[0]
    nb, nl, nt = len(grid.bus_index), len(grid.line_index), len(grid.trafo_index)
    out = {name: np.empty((n_steps, size), dtype=dtype) for name, size in (
        ("vm_a_pu", nb), ("vm_b_pu", nb), ("vm_c_pu", nb), ("va_a_degree", nb),
        ("va_b_degree", nb), ("va_c_degree", nb), ("v0_pu", nb), ("vuf_pct", nb),
        ("line_i_a_ka", nl), ("line_i_b_ka", nl), ("line_i_c_ka", nl), ("line_i_n_ka", nl),
        ("line_loading_pct", nl), ("trafo_loading_pct", nt))}
    out["vm_pu"] = np.empty((n_steps, nb), dtype=dtype)
    out["p_slack_mw"] = np.empty(n_steps)
    out["q_slack_mvar"] = np.empty(n_steps)
    out["converged"] = np.empty(n_steps, dtype=bool)
    out["iterations"] = np.empty(n_steps, dtype=np.int32)
    for t0 in range(0, n_steps, chunk_steps):
        rows = slice(t0, min(n_steps, t0 + chunk_steps))
        result = solve_3ph(grid, p[rows], q[rows], block=block)
        n_rows = rows.stop - rows.start
        s_re, s_im = np.empty(n_rows), np.empty(n_rows)
        _fill_outputs(grid, result.v_kept, {name: array[rows] for name, array in out.items()},
                      s_re, s_im)
        # plus what the injection columns at the slack buses consume
        on_ref = np.isin(grid.col_bus, grid.ref)
        s_ref = (p[rows][:, on_ref] + 1j * q[rows][:, on_ref]) @ grid.col_factor[on_ref]
        out["p_slack_mw"][rows] = (s_re - s_ref.real) * grid.base_mva
        out["q_slack_mvar"][rows] = (s_im - s_ref.imag) * grid.base_mva
        out["converged"][rows] = result.converged
        out["iterations"][rows] = result.iterations
    return _to_dataset(grid, out)


def _fill_outputs(grid: Grid3ph, v_kept: np.ndarray, out: dict, s_re: np.ndarray,
                  s_im: np.ndarray) -> None:
    """Every ``[time, …]`` output of a chunk from the kept buses' sequence voltages (kernel);
    ``s_re``, ``s_im`` ``[T]`` receive the power into the network at the slack [p.u.]."""
    o = grid.outputs
    pf3_kernels.phase_outputs(
        np.ascontiguousarray(v_kept), o["kept_of_internal"], grid.eliminated, o["w_ptr"],
        o["w_idx"], o["w_val"], grid.bus_internal, grid.branch_from, grid.branch_to,
        o["y_ff"], o["y_ft"], o["y_tf"], o["y_tt"],
        o["line_branch"], o["line_col"], o["line_ka"], o["line_pct"],
        o["trafo_branch"], o["trafo_col"], o["trafo_pct"], o["slack_branch"], o["slack_end"],
        *(out[name] for name in _OUTPUT_ORDER), s_re, s_im)


_OUTPUT_ORDER = ("vm_a_pu", "vm_b_pu", "vm_c_pu", "va_a_degree", "va_b_degree", "va_c_degree",
                 "v0_pu", "vuf_pct", "vm_pu", "line_i_a_ka", "line_i_b_ka", "line_i_c_ka",
                 "line_i_n_ka", "line_loading_pct", "trafo_loading_pct")


def _output_arrays(net, kept, eliminated, w, yf, yt, branch_from, branch_to, base_kv, base_mva,
                   line_ends, trafo_ends, n_int, ref) -> dict:
    """Plain arrays of `sim.pf3_kernels.phase_outputs`: recovery of eliminated buses, branch
    end admittances per sequence, and per-end kA / percent coefficients."""
    kept_of_internal = np.full(n_int, -1, dtype=np.int64)
    kept_of_internal[kept] = np.arange(len(kept))
    w_ptr = np.zeros((3, len(eliminated) + 1), dtype=np.int64)
    offset = 0
    for s in range(3):
        w_ptr[s] = w[s].indptr + offset
        offset += w[s].nnz
    rows = np.arange(len(branch_from))
    ends = {}
    for name, matrix, bus in (("y_ff", yf, branch_from), ("y_ft", yf, branch_to),
                              ("y_tf", yt, branch_from), ("y_tt", yt, branch_to)):
        ends[name] = np.stack([np.asarray(matrix[s][rows, bus]).ravel() for s in range(3)]
                              ).astype(complex)
    # pandapower 3ph: I [kA] = I [p.u.]·baseMVA·√3 / V_base [kV] (per-phase base power)
    ka_per_pu = base_mva * np.sqrt(3.0) / base_kv
    line_branch, line_col = line_ends
    line_ka = np.stack([ka_per_pu[branch_from[line_branch]], ka_per_pu[branch_to[line_branch]]])
    rating = (net.line.max_i_ka * net.line.df * net.line.parallel).to_numpy(float)[line_col]
    line_pct = np.divide(100.0 * line_ka, rating, out=np.full_like(line_ka, np.inf),
                         where=rating != 0)
    trafo_branch, trafo_col = trafo_ends
    trafo = net.trafo.iloc[trafo_col]
    # pandapower's "current" loading: max(I_hv·vn_hv, I_lv·vn_lv)·√3/sn per phase
    per_sn = np.sqrt(3.0) * 100.0 / (trafo.sn_mva * trafo.parallel * trafo.df).to_numpy(float)
    trafo_pct = np.stack([ka_per_pu[branch_from[trafo_branch]] * trafo.vn_hv_kv.to_numpy(float),
                          ka_per_pu[branch_to[trafo_branch]] * trafo.vn_lv_kv.to_numpy(float)]
                         ) * per_sn
    at_from = np.flatnonzero(np.isin(branch_from, ref))
    at_to = np.flatnonzero(np.isin(branch_to, ref))
    return {
        "slack_branch": np.concatenate([at_from, at_to]).astype(np.int64),
        "slack_end": np.concatenate([np.zeros(len(at_from)), np.ones(len(at_to))]).astype(np.int64),
        "kept_of_internal": kept_of_internal, "w_ptr": w_ptr,
        "w_idx": np.concatenate([w[s].indices for s in range(3)]).astype(np.int64),
        "w_val": np.concatenate([w[s].data for s in range(3)]).astype(complex),
        **ends, "line_branch": line_branch, "line_col": line_col, "line_ka": line_ka,
        "line_pct": line_pct, "trafo_branch": trafo_branch, "trafo_col": trafo_col,
        "trafo_pct": np.ascontiguousarray(trafo_pct),
    }



_UNITS = {
    "vm_a_pu": ("p.u.", "phase a voltage magnitude (to neutral = earth)"),
    "vm_b_pu": ("p.u.", "phase b voltage magnitude"),
    "vm_c_pu": ("p.u.", "phase c voltage magnitude"),
    "va_a_degree": ("degree", "phase a voltage angle"),
    "va_b_degree": ("degree", "phase b voltage angle"),
    "va_c_degree": ("degree", "phase c voltage angle"),
    "v0_pu": ("p.u.", "zero-sequence voltage magnitude (neutral-point displacement)"),
    "vuf_pct": ("%", "voltage unbalance factor |V2|/|V1|"),
    "line_i_a_ka": ("kA", "phase a current, larger of the two ends"),
    "line_i_b_ka": ("kA", "phase b current, larger of the two ends"),
    "line_i_c_ka": ("kA", "phase c current, larger of the two ends"),
    "line_i_n_ka": ("kA", "neutral (earth return) current 3·I0, larger of the two ends"),
    "line_loading_pct": ("%", "worst phase current over max_i_ka·df·parallel"),
    "trafo_loading_pct": ("%", "worst phase current loading over sn_mva (pandapower 'current')"),
    "vm_pu": ("p.u.", "voltage of the phase farthest from nominal (worst phase)"),
    "p_slack_mw": ("MW", "active power supplied by the ext_grid(s), three phases"),
    "q_slack_mvar": ("Mvar", "reactive power supplied by the ext_grid(s), three phases"),
    "converged": ("bool", "step converged"),
    "iterations": ("1", "fixed-point iterations"),
}


def _to_dataset(grid: Grid3ph, out: dict) -> xr.Dataset:
    n_steps = len(out["converged"])
    dims = {name: ("time",) if array.ndim == 1 else ("time", _second_dim(name))
            for name, array in out.items()}
    ds = xr.Dataset(
        {name: (dims[name], array, {"units": _UNITS[name][0], "long_name": _UNITS[name][1]})
         for name, array in out.items()},
        coords={"time": np.arange(n_steps), "bus": grid.bus_index.astype(np.int64),
                "line": grid.line_index.astype(np.int64),
                "trafo": grid.trafo_index.astype(np.int64)},
    )
    ds.attrs.update({
        "phases": "unbalanced",
        "steps_not_converged": int(np.count_nonzero(~out["converged"])),
        "unenergized_buses": grid.unenergized_buses.astype(np.int64).tolist(),
    })
    check = ds.assign_coords(time=np.arange(n_steps).astype("datetime64[ns]"))
    validate(check, dims, stage="powerflow3ph")
    return ds


def _second_dim(name: str) -> str:
    return "line" if name.startswith("line_") else "trafo" if name.startswith("trafo_") else "bus"
