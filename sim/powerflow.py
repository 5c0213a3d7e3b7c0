"""Batched balanced AC power flow for every time step, on pandapower's own internal model.

``prepare_grid`` runs pandapower's ``runpp`` once (tight tolerance) and keeps what every later step
needs as plain arrays (`GridModel`): pandapower's internal bus admittance matrix (closed bus-bus
switches fused, open line switches as auxiliary buses, transformer taps and phase shift, line
charging, shunts, three-winding transformers as a star of branches), the slack voltages, the
constant injections of all elements other than loads and static generators, and the sparse LU
factors of ``Y_NN``. ``solve`` then runs the Numba implicit Z-bus Gauss kernel over all steps
(`sim.pf_kernels.solve_fixed_point_forest` on radial grids up to `FOREST_MAX_BUSES` buses with
constant-power loads, `sim.pf_kernels.solve_fixed_point` otherwise; the same results bit for
bit); ``run_timeseries`` wraps it and returns the labelled Dataset of the stage contract.

Grids with voltage-controlled generators (``gen``, PV buses) are solved with a Newton–Raphson
method in polar coordinates (Tinney & Hart, "Power flow solution by Newton's method", IEEE Trans.
PAS-86(11), 1967) per step. A step the fixed point does not converge is retried with Newton and,
failing that, with pandapower ``runpp``; each step's solver is recorded (``solver`` variable), no
step is dropped. A step that no solver converges keeps its last iterate, flagged
``converged = False``.

``prepare_grid`` keeps the last `GRID_MEMO_SIZE` models it built, keyed by a hash of the net's
element tables (`net_fingerprint`): a second call with an unchanged net, e.g. each
``run_timeseries(net, ...)`` of a run, reuses the model instead of repeating the copy, the
tight ``runpp`` and the factorization. The model is the same object, so results stay bit for bit
those of a fresh preparation; it must not be modified (nothing in gridflex does).

Only buses that pandapower energizes (in service and connected to a slack) are reported; others
are listed in ``ds.attrs["unenergized_buses"]``. Out-of-service lines and transformers report 0.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import xarray as xr

from scenarios.errors import InputError
from sim import pf_kernels
from sim.dataset import validate
from sim.pf_simd import LANES

if TYPE_CHECKING:  # pragma: no cover
    from pandapower.auxiliary import pandapowerNet

REFERENCE_TOLERANCE_MVA = 1e-10
"""Tolerance of the pandapower ``runpp`` that builds the model (and of the runpp fallback)."""

VOLTAGE_TOLERANCE_PU = 1e-10
"""Fixed point stops when its estimated voltage error is below this [p.u.]: no bus voltage moved
more than this in the last iteration, or the contraction-scaled change is (see
`sim.pf_kernels.solve_fixed_point`)."""

NEWTON_TOLERANCE_PU = 1e-11
"""Newton stops when the largest power mismatch is below this [p.u. on ``sn_mva``]."""

# Element tables that carry data the model does not represent per step. Their rows are
# accepted only when none is in service.
_UNSUPPORTED_TABLES = (
    "dcline", "vsc", "svc", "ssc", "tcsc", "motor", "asymmetric_load", "asymmetric_sgen",
    "line_dc", "bus_dc", "source_dc", "load_dc",
)

SOLVER_CODES = {"fixed_point": 0, "newton": 1, "pandapower": 2}

FOREST_MAX_BUSES = 512 * 1024 // (6 * LANES * 8) - 1
"""Largest radial grid [non-slack buses] for the radial kernel, whose six ``[n + 1, LANES]``
float64 working arrays live on a worker thread's stack: at most 512 KiB of the 2–8 MiB that
OpenMP, TBB and pthread workers get. Larger grids (the SimBench MV+LV ones) take the LU kernel."""


@dataclass(frozen=True)
class Forest:
    """The LU factor of a radial grid as a forest (see `sim.pf_kernels.solve_fixed_point_forest`):
    each factor column has at most one strictly-lower entry (its parent), mirrored in the upper
    factor, and rows are not permuted."""

    parent: np.ndarray  # [n] factor column of the parent; n for a root (next to a slack)
    l_val: np.ndarray   # [n] complex L[parent, j]; 0 for a root
    u_val: np.ndarray   # [n] complex U[j, parent]; 0 for a root


@dataclass(frozen=True)
class GridModel:
    """Everything the batched solver needs, as plain arrays (internal bus numbering).

    ``n`` non-slack buses are ordered as the LU factor's columns ("factor order"); voltages
    live in that order inside the kernel. ``bus_internal`` maps each reported pandapower bus
    to its internal bus; ``factor_of_internal`` maps internal buses to factor columns (-1 for
    slack buses).
    """

    net: pandapowerNet
    base_mva: float
    bus_index: np.ndarray           # [nb] reported pandapower buses (energized)
    unenergized_buses: np.ndarray   # pandapower buses not reported
    bus_internal: np.ndarray        # [nb] internal bus of each reported bus
    n_internal: int
    ref: np.ndarray                 # [nr] internal slack buses
    pv: np.ndarray                  # internal PV buses (gen)
    pq: np.ndarray                  # internal PQ buses
    v_ref: np.ndarray               # [nr] complex slack voltage [p.u.]
    ybus: sp.csr_matrix             # [n_internal²] [p.u.]
    v_start: np.ndarray             # [n_internal] complex: pandapower's solution at the net's own values
    factor_of_internal: np.ndarray  # [n_internal] factor column, -1 for slack / PV
    internal_of_factor: np.ndarray  # [n] internal bus of each factor column
    rhs_pos: np.ndarray             # [n] factor row of each factor column
    l_ptr: np.ndarray
    l_idx: np.ndarray
    l_val: np.ndarray
    u_ptr: np.ndarray
    u_idx: np.ndarray
    u_val: np.ndarray
    u_diag_inv: np.ndarray
    c_rhs: np.ndarray               # [n] complex −Y_NS·V_S in factor row order
    v0: np.ndarray                  # [n] complex no-load voltage, factor order
    forest: Forest | None           # the factor's elimination forest on a radial grid, else None
    s_base: np.ndarray              # [n_internal] complex constant injection of other elements [p.u.]
    load_internal: np.ndarray       # [n_load] internal bus (-1 out of service / unenergized)
    load_factor: np.ndarray         # [n_load] scaling·in_service/sn_mva [1/MVA]
    load_zip: np.ndarray            # [6, n_load] const/i/z shares of p, then of q
    sgen_internal: np.ndarray
    sgen_factor: np.ndarray
    br_from: np.ndarray             # [n_branch] internal buses of in-service branches
    br_to: np.ndarray
    y_ff: np.ndarray
    y_ft: np.ndarray
    y_tf: np.ndarray
    y_tt: np.ndarray
    line_index: np.ndarray
    line_ends: tuple[np.ndarray, ...]     # (branch, side, element, kA coef, percent coef)
    trafo_index: np.ndarray
    trafo_ends: tuple[np.ndarray, ...]

    @property
    def has_zip(self) -> bool:
        return bool(np.any(self.load_zip[[1, 2, 4, 5]] != 0.0))

    @property
    def needs_newton(self) -> bool:
        return len(self.pv) > 0


def _check_supported(net: pandapowerNet) -> None:
    for table in _UNSUPPORTED_TABLES:
        frame = net[table] if table in net else None
        if frame is None or not hasattr(frame, "columns") or len(frame) == 0:
            continue
        active = frame["in_service"].to_numpy(bool) if "in_service" in frame.columns else [True]
        if bool(np.any(active)):
            raise InputError(
                f"network: element table '{table}' is not supported by the batched power flow"
            )
    if len(net.ext_grid) == 0 or not net.ext_grid.in_service.astype(bool).any():
        raise InputError("network: no in-service ext_grid (slack)")


GRID_MEMO_SIZE = 4
"""Prepared models kept per process by `prepare_grid` (a few MB each on SimBench MV+LV grids)."""

_grid_memo: OrderedDict[str, GridModel] = OrderedDict()
_grid_memo_lock = threading.Lock()

# Net entries that do not enter the model: results and runpp's private state (``runpp``
# starts flat or from DC, never from stored results), the flags a power flow sets, and
# time-series profiles.
_NOT_IN_MODEL = ("profiles",)
_RUN_FLAGS = ("converged", "OPF_converged")


def net_fingerprint(net: pandapowerNet) -> str:
    """SHA-256 over every element table (index, columns, dtypes, values) and scalar setting
    of ``net`` that `prepare_grid` can depend on; results (``res_*``), private entries
    (``_*``), the ``converged`` flags and ``profiles`` are left out."""
    import pandas as pd

    digest = hashlib.sha256()
    for key in sorted(net.keys()):
        if key.startswith(("res_", "_")) or key in _NOT_IN_MODEL or key in _RUN_FLAGS:
            continue
        value = net[key]
        digest.update(f"\x00{key}:{type(value).__name__}".encode())
        if isinstance(value, pd.DataFrame):
            digest.update(repr((list(value.columns), [str(d) for d in value.dtypes])).encode())
            try:
                hashed = pd.util.hash_pandas_object(value, index=True)
                digest.update(hashed.to_numpy().tobytes())
            except TypeError:  # unhashable cells (lists, dicts): their text form instead
                digest.update(value.to_json(orient="split", double_precision=17).encode())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def clear_grid_memo() -> None:
    """Forget the models `prepare_grid` kept."""
    with _grid_memo_lock:
        _grid_memo.clear()


def prepare_grid(net: pandapowerNet) -> GridModel:
    """Build the solver model from one tight pandapower ``runpp`` (on a copy of ``net``), or
    return the one built for a net of the same content (`net_fingerprint`).

    Raises
    ------
    InputError
        An unsupported element table is in service, or pandapower cannot solve the net at its
        own values (the model would be undefined).
    """
    _check_supported(net)
    key = net_fingerprint(net)
    with _grid_memo_lock:
        grid = _grid_memo.get(key)
        if grid is not None:
            _grid_memo.move_to_end(key)
            return grid
    grid = _prepare_grid(net)
    with _grid_memo_lock:
        _grid_memo[key] = grid
        while len(_grid_memo) > GRID_MEMO_SIZE:
            _grid_memo.popitem(last=False)
    return grid


def _prepare_grid(net: pandapowerNet) -> GridModel:
    import pandapower as pp
    from pandapower.pypower.idx_brch import F_BUS, T_BUS
    from pandapower.pypower.idx_bus import BASE_KV, PD, QD
    from pandapower.pypower.idx_gen import GEN_BUS, PG, QG

    # The profiles (a year of every element, most of the net's bytes) are not copied: the
    # deepcopy memo maps them to None, and the key is dropped from the copy.
    skip = {id(net[key]): None for key in _NOT_IN_MODEL if key in net}
    net = copy.deepcopy(net, skip)
    for key in _NOT_IN_MODEL:
        if key in net:
            del net[key]
    try:
        pp.runpp(net, tolerance_mva=REFERENCE_TOLERANCE_MVA, max_iteration=50)
    except Exception as exc:  # LoadflowNotConverged and friends
        raise InputError(f"network: pandapower cannot solve the net at its own values ({exc})") from None
    ppci = net._ppc["internal"]
    base_mva = float(ppci["baseMVA"])
    ybus = sp.csr_matrix(ppci["Ybus"])
    n_int = ybus.shape[0]
    ref = np.asarray(ppci["ref"], dtype=np.int64)
    pv = np.asarray(ppci["pv"], dtype=np.int64)
    pq = np.asarray(ppci["pq"], dtype=np.int64)
    v_start = np.asarray(ppci["V"], dtype=complex)
    v_ref = v_start[ref].copy()

    lookup = np.asarray(net._pd2ppc_lookups["bus"], dtype=np.int64)

    def internal_of(buses: np.ndarray) -> np.ndarray:
        idx = lookup[np.asarray(buses, dtype=np.int64)]
        return np.where(idx < n_int, idx, -1)

    bus_all = net.bus.index.to_numpy()
    bus_int_all = internal_of(bus_all)
    energized = (bus_int_all >= 0) & net.bus.in_service.to_numpy(bool)
    bus_index = bus_all[energized]
    bus_internal = bus_int_all[energized]

    # Loads and sgens enter per step; everything else is a constant injection.
    load_internal = internal_of(net.load.bus.to_numpy())
    load_on = net.load.in_service.to_numpy(bool) & (load_internal >= 0)
    load_internal = np.where(load_on, load_internal, -1)
    load_factor = net.load.scaling.to_numpy(float) * load_on / base_mva
    sgen_internal = internal_of(net.sgen.bus.to_numpy())
    sgen_on = net.sgen.in_service.to_numpy(bool) & (sgen_internal >= 0)
    sgen_internal = np.where(sgen_on, sgen_internal, -1)
    sgen_factor = net.sgen.scaling.to_numpy(float) * sgen_on / base_mva
    load_zip = _zip_shares(net)

    s_elements = np.zeros(n_int, dtype=complex)
    np.add.at(s_elements, load_internal[load_on],
              -(net.load.p_mw.to_numpy(float) + 1j * net.load.q_mvar.to_numpy(float))[load_on]
              * load_factor[load_on])
    np.add.at(s_elements, sgen_internal[sgen_on],
              (net.sgen.p_mw.to_numpy(float) + 1j * net.sgen.q_mvar.to_numpy(float))[sgen_on]
              * sgen_factor[sgen_on])
    bus_table = ppci["bus"]
    s_base = -(bus_table[:, PD].real + 1j * bus_table[:, QD].real) / base_mva - s_elements
    gen_table = ppci["gen"]
    gen_bus = gen_table[:, GEN_BUS].real.astype(np.int64)
    non_ref_gen = ~np.isin(gen_bus, ref)
    np.add.at(s_base, gen_bus[non_ref_gen],
              (gen_table[non_ref_gen, PG].real + 1j * gen_table[non_ref_gen, QG].real) / base_mva)

    factor = _factorize(ybus, ref, pv, v_ref)

    branch = net._ppc["branch"]
    in_service = np.asarray(ppci["branch_is"], dtype=bool)
    ppc_of_ppci = np.flatnonzero(in_service)
    ppci_branch = ppci["branch"]
    br_from = ppci_branch[:, F_BUS].real.astype(np.int64)
    br_to = ppci_branch[:, T_BUS].real.astype(np.int64)
    yf = sp.csr_matrix(ppci["Yf"])
    yt = sp.csr_matrix(ppci["Yt"])
    rows = np.arange(len(br_from))
    y_ff = np.asarray(yf[rows, br_from]).ravel().astype(complex)
    y_ft = np.asarray(yf[rows, br_to]).ravel().astype(complex)
    y_tf = np.asarray(yt[rows, br_from]).ravel().astype(complex)
    y_tt = np.asarray(yt[rows, br_to]).ravel().astype(complex)
    base_kv = bus_table[:, BASE_KV].real
    ka_per_pu = base_mva / (np.sqrt(3.0) * base_kv)  # [kA per p.u. current] at each internal bus
    ppci_of_ppc = np.full(branch.shape[0], -1, dtype=np.int64)
    ppci_of_ppc[ppc_of_ppci] = np.arange(len(ppc_of_ppci))
    lookups = net._pd2ppc_lookups["branch"]

    line_ends = _element_ends(net, "line", lookups, ppci_of_ppc, br_from, br_to, ka_per_pu)
    trafo_ends = _element_ends(net, "trafo", lookups, ppci_of_ppc, br_from, br_to, ka_per_pu)

    return GridModel(
        net=net, base_mva=base_mva, bus_index=bus_index,
        unenergized_buses=bus_all[~energized], bus_internal=bus_internal, n_internal=n_int,
        ref=ref, pv=pv, pq=pq, v_ref=v_ref, ybus=ybus, v_start=v_start,
        s_base=s_base, load_internal=load_internal, load_factor=load_factor, load_zip=load_zip,
        sgen_internal=sgen_internal, sgen_factor=sgen_factor,
        br_from=br_from, br_to=br_to, y_ff=y_ff, y_ft=y_ft, y_tf=y_tf, y_tt=y_tt,
        line_index=net.line.index.to_numpy(), line_ends=line_ends,
        trafo_index=net.trafo.index.to_numpy(), trafo_ends=trafo_ends,
        **factor,
    )


def _zip_shares(net: pandapowerNet) -> np.ndarray:
    """[6, n_load] shares (const, current, impedance) of p then q, as pandapower applies them."""
    n = len(net.load)
    shares = np.zeros((6, n))
    shares[0] = shares[3] = 1.0
    if not net._options.get("voltage_depend_loads", False):
        return shares
    for row, col in ((1, "const_i_p_percent"), (2, "const_z_p_percent"),
                     (4, "const_i_q_percent"), (5, "const_z_q_percent")):
        if col in net.load:
            shares[row] = net.load[col].fillna(0.0).to_numpy(float) / 100.0
    shares[0] = 1.0 - shares[1] - shares[2]
    shares[3] = 1.0 - shares[4] - shares[5]
    return shares


def _factorize(ybus: sp.csr_matrix, ref: np.ndarray, pv: np.ndarray, v_ref: np.ndarray) -> dict:
    """Sparse LU of ``Y_NN`` (non-slack, non-PV buses) and the constant right-hand side."""
    n_int = ybus.shape[0]
    fixed = np.union1d(ref, pv)
    free = np.setdiff1d(np.arange(n_int), fixed)
    y_nn = sp.csc_matrix(ybus[free][:, free])
    lu = spla.splu(y_nn, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                   options={"SymmetricMode": True})
    perm_r, perm_c = lu.perm_r, lu.perm_c
    n = len(free)
    # SuperLU: Pr·A·Pc = L·U with original row i → factor row perm_r[i] and original
    # column i → factor column perm_c[i].
    internal_of_factor = np.empty(n, dtype=np.int64)
    internal_of_factor[perm_c] = free
    rhs_pos = np.empty(n, dtype=np.int64)
    rhs_pos[perm_c] = perm_r  # equation row of the bus behind factor column j
    factor_of_internal = np.full(n_int, -1, dtype=np.int64)
    factor_of_internal[internal_of_factor] = np.arange(n)

    lower = sp.csc_matrix(lu.L)
    upper = sp.csc_matrix(lu.U)
    lower.sort_indices()
    upper.sort_indices()
    l_strict = sp.csc_matrix(sp.tril(lower, k=-1))
    u_strict = sp.csc_matrix(sp.triu(upper, k=1))
    c = -(ybus[free][:, ref] @ v_ref)
    c_rhs = np.empty(n, dtype=complex)
    c_rhs[perm_r] = c
    v0_orig = lu.solve(c.astype(complex))
    v0 = np.empty(n, dtype=complex)
    v0[perm_c] = v0_orig
    return {
        "factor_of_internal": factor_of_internal,
        "internal_of_factor": internal_of_factor,
        "rhs_pos": rhs_pos,
        "l_ptr": l_strict.indptr.astype(np.int64),
        "l_idx": l_strict.indices.astype(np.int64),
        "l_val": l_strict.data.astype(complex),
        "u_ptr": u_strict.indptr.astype(np.int64),
        "u_idx": u_strict.indices.astype(np.int64),
        "u_val": u_strict.data.astype(complex),
        "u_diag_inv": 1.0 / upper.diagonal().astype(complex),
        "c_rhs": c_rhs,
        "v0": v0,
        "forest": _forest(rhs_pos, l_strict, u_strict),
    }


def _forest(rhs_pos: np.ndarray, l_strict: sp.csc_matrix, u_strict: sp.csc_matrix) -> Forest | None:
    """The factor as a forest, or None when it is not one (meshed grid, permuted rows)."""
    n = len(rhs_pos)
    u_rows = sp.csr_matrix(u_strict)
    l_count, u_count = np.diff(l_strict.indptr), np.diff(u_rows.indptr)
    if (not np.array_equal(rhs_pos, np.arange(n)) or l_count.max(initial=0) > 1
            or u_count.max(initial=0) > 1):
        return None
    parent = np.full(n, n, dtype=np.int64)
    u_parent = np.full(n, n, dtype=np.int64)
    l_val = np.zeros(n, dtype=complex)
    u_val = np.zeros(n, dtype=complex)
    has, u_has = l_count == 1, u_count == 1
    parent[has] = l_strict.indices[l_strict.indptr[:-1][has]]
    l_val[has] = l_strict.data[l_strict.indptr[:-1][has]]
    u_parent[u_has] = u_rows.indices[u_rows.indptr[:-1][u_has]]
    u_val[u_has] = u_rows.data[u_rows.indptr[:-1][u_has]]
    if not np.array_equal(parent, u_parent):
        return None
    return Forest(parent, l_val, u_val)


def _element_ends(net, table, lookups, ppci_of_ppc, br_from, br_to, ka_per_pu):
    """Per element end: (branch, side, element position, kA per p.u., percent per p.u.)."""
    empty_i = np.zeros(0, dtype=np.int64)
    empty_f = np.zeros(0)
    if table not in lookups or len(net[table]) == 0:
        return (empty_i, empty_i, empty_i, empty_f, empty_f)
    start, stop = lookups[table]
    ppc_rows = np.arange(start, stop)
    pos = np.arange(stop - start)
    branch = ppci_of_ppc[ppc_rows]
    live = branch >= 0
    branch, pos = branch[live], pos[live]
    df = net[table]["df"].to_numpy(float)[pos]
    parallel = net[table]["parallel"].to_numpy(float)[pos]
    ends = []
    for side, buses in ((0, br_from), (1, br_to)):
        kA = ka_per_pu[buses[branch]]
        if table == "line":
            rating = net.line["max_i_ka"].to_numpy(float)[pos] * df * parallel
            percent = np.divide(100.0 * kA, rating, out=np.full_like(kA, np.inf), where=rating != 0)
        else:
            vn = net.trafo["vn_hv_kv" if side == 0 else "vn_lv_kv"].to_numpy(float)[pos]
            sn = net.trafo["sn_mva"].to_numpy(float)[pos]
            percent = kA * vn * np.sqrt(3.0) / sn * 100.0 / parallel / df
        ends.append((branch, np.full(len(branch), side, dtype=np.int64), pos, kA, percent))
    return tuple(np.concatenate([e[k] for e in ends]) for k in range(5))


@dataclass(frozen=True)
class PowerFlowResult:
    """Internal bus voltages of every step and how each step was solved."""

    v: np.ndarray           # [T, n_internal] complex bus voltage [p.u.]
    iterations: np.ndarray  # [T] int32 iterations of the solver that produced v
    converged: np.ndarray   # [T] bool
    solver: np.ndarray      # [T] int8, see SOLVER_CODES


def default_block(n: int) -> int:
    """Steps per kernel block (results do not depend on it).

    64 while a block's ~6 working arrays of ``n × block`` float64 fit the 512 KiB L2 cache
    (n ≲ 150; measured best on 15–150-bus grids, 1-MV-rural +29 % over 40), fewer down to 32
    above.
    """
    return int(min(64, max(32, 10_000 // max(n, 1))))


def _as_steps(values, n_steps: int | None, n_elements: int, name: str) -> np.ndarray:
    if values is None:
        return np.zeros((n_steps or 0, n_elements))
    array = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    if array.ndim != 2 or array.shape[1] != n_elements:
        raise InputError(f"power flow: {name} must have shape [time, {n_elements}], got {array.shape}")
    if n_steps is not None and array.shape[0] != n_steps:
        raise InputError(f"power flow: {name} has {array.shape[0]} steps, expected {n_steps}")
    return array


def _require_finite(arrays: dict[str, np.ndarray]) -> None:
    """InputError naming the first array that holds a NaN or infinite value."""
    for name, array in arrays.items():
        # An empty selection (no element the kernel skips) needs no parallel launch: on a busy
        # machine waking the worker threads cost ~30 ms per call for no work.
        if array.size and not pf_kernels.all_finite(array):
            raise InputError(f"power flow: {name} contains NaN or infinite values")


def _factor_columns(grid: GridModel, element_internal: np.ndarray) -> np.ndarray:
    """Factor column of each element's bus; -1 where the fixed-point kernel does not read the
    element (out of service, unenergized, or at a slack bus)."""
    return np.where(element_internal >= 0, grid.factor_of_internal[element_internal], -1)


def solve(
    grid: GridModel,
    load_p_mw,
    load_q_mvar,
    sgen_p_mw=None,
    sgen_q_mvar=None,
    *,
    block: int | None = None,
    max_iter: int = 100,
    fallback: bool = True,
) -> PowerFlowResult:
    """Solve every time step.

    Parameters
    ----------
    grid
        From `prepare_grid`.
    load_p_mw, load_q_mvar
        ``[T, n_load]`` in ``net.load`` order [MW], [Mvar]; pandapower's ``scaling`` and
        ``in_service`` apply on top.
    sgen_p_mw, sgen_q_mvar
        ``[T, n_sgen]`` in ``net.sgen`` order [MW], [Mvar]; None → 0.
    block
        Steps per kernel block (results do not depend on it); default `default_block`. The
        radial kernel takes it as steps per parallel task, rounded up to whole lane groups.
    max_iter
        Fixed-point iteration limit per step.
    fallback
        Retry non-converged steps with Newton, then pandapower ``runpp``.
    """
    n_load, n_sgen = len(grid.load_internal), len(grid.sgen_internal)
    load_p = _as_steps(load_p_mw, None, n_load, "load_p_mw")
    n_steps = load_p.shape[0]
    load_q = _as_steps(load_q_mvar, n_steps, n_load, "load_q_mvar")
    sgen_p = _as_steps(sgen_p_mw, n_steps, n_sgen, "sgen_p_mw")
    sgen_q = _as_steps(sgen_q_mvar, n_steps, n_sgen, "sgen_q_mvar")
    v, iterations, converged, solver = _solve_parts(
        grid, load_p, load_q, sgen_p, sgen_q, block, max_iter, fallback)
    return PowerFlowResult(v, iterations, converged, solver)


def _solve_parts(grid, load_p, load_q, sgen_p, sgen_q, block, max_iter, fallback):
    """`solve` on validated arrays → complex voltages ``[T, n_internal]`` and flags."""
    n_steps = load_p.shape[0]
    # The kernel writes each step's row of the complex result whole, with streaming stores.
    v = np.empty((n_steps, grid.n_internal), dtype=complex)
    iterations = np.zeros(n_steps, dtype=np.int32)
    converged = np.zeros(n_steps, dtype=bool)
    solver = np.zeros(n_steps, dtype=np.int8)
    inputs = {"load_p_mw": load_p, "load_q_mvar": load_q, "sgen_p_mw": sgen_p, "sgen_q_mvar": sgen_q}
    if grid.needs_newton:
        _require_finite(inputs)
        retry = np.arange(n_steps)
    else:
        # The kernel checks what it reads (one pass over the inputs instead of two, ~6 % of a
        # 1-MV-urban solve); the columns of elements it skips are checked here.
        load_unread = _factor_columns(grid, grid.load_internal) < 0
        sgen_unread = _factor_columns(grid, grid.sgen_internal) < 0
        _require_finite({"load_p_mw": load_p[:, load_unread], "load_q_mvar": load_q[:, load_unread],
                         "sgen_p_mw": sgen_p[:, sgen_unread], "sgen_q_mvar": sgen_q[:, sgen_unread]})
        _run_fixed_point(grid, load_p, load_q, sgen_p, sgen_q, block, max_iter, v, iterations,
                         converged)
        not_finite = np.flatnonzero(iterations == 0)  # the kernel's mark, see solve_fixed_point
        if not_finite.size:
            _require_finite(inputs)
            raise InputError(f"power flow: the bus injections of step {not_finite[0]} overflow "
                             "(finite inputs, infinite sums)")
        retry = np.flatnonzero(~converged)
        if not fallback:
            return v, iterations, converged, solver
    for t in retry:
        s_const, s_i, s_z = step_injections(grid, load_p[t], load_q[t], sgen_p[t], sgen_q[t])
        v_t, its, ok = newton_step(grid, s_const, s_i, s_z, grid.v_start)
        solver[t] = SOLVER_CODES["newton"]
        if not ok and fallback:
            v_t, its, ok = _runpp_step(grid, load_p[t], load_q[t], sgen_p[t], sgen_q[t], v_t)
            solver[t] = SOLVER_CODES["pandapower"]
        v[t], iterations[t], converged[t] = v_t, its, ok
    return v, iterations, converged, solver


def _run_fixed_point(grid, load_p, load_q, sgen_p, sgen_q, block, max_iter, v, iterations,
                     converged):
    """The fixed-point kernel for every step into ``v`` ([T, n_internal] complex, C-contiguous;
    rows of non-finite steps are left unwritten) and the ``[T]`` flags."""
    n = len(grid.internal_of_factor)
    load_pos = _factor_columns(grid, grid.load_internal)
    sgen_pos = _factor_columns(grid, grid.sgen_internal)
    s_base = grid.s_base[grid.internal_of_factor]
    zip_shares = np.ascontiguousarray(grid.load_zip)
    slack = (grid.ref, grid.v_ref.real.copy(), grid.v_ref.imag.copy())
    if grid.forest is not None and not grid.has_zip and n <= FOREST_MAX_BUSES:
        forest = grid.forest
        pf_kernels.solve_fixed_point_forest(
            load_p, load_q, load_pos, grid.load_factor,
            sgen_p, sgen_q, sgen_pos, grid.sgen_factor, zip_shares[0], zip_shares[3],
            s_base.real.copy(), s_base.imag.copy(), grid.c_rhs.real.copy(), grid.c_rhs.imag.copy(),
            forest.parent, forest.l_val.real.copy(), forest.l_val.imag.copy(),
            forest.u_val.real.copy(), forest.u_val.imag.copy(),
            grid.u_diag_inv.real.copy(), grid.u_diag_inv.imag.copy(),
            grid.v0.real.copy(), grid.v0.imag.copy(), VOLTAGE_TOLERANCE_PU, max_iter,
            -(-(block or default_block(n)) // LANES), grid.internal_of_factor,
            *slack, v, iterations, converged,
        )
        return
    pf_kernels.solve_fixed_point(
        load_p, load_q, load_pos, grid.load_factor,
        sgen_p, sgen_q, sgen_pos, grid.sgen_factor,
        *zip_shares,
        s_base.real.copy(), s_base.imag.copy(), grid.c_rhs.real.copy(), grid.c_rhs.imag.copy(),
        grid.rhs_pos,
        grid.l_ptr, grid.l_idx, grid.l_val.real.copy(), grid.l_val.imag.copy(),
        grid.u_ptr, grid.u_idx, grid.u_val.real.copy(), grid.u_val.imag.copy(),
        grid.u_diag_inv.real.copy(), grid.u_diag_inv.imag.copy(),
        grid.v0.real.copy(), grid.v0.imag.copy(), VOLTAGE_TOLERANCE_PU, max_iter,
        block or default_block(n), grid.internal_of_factor,
        *slack, v, iterations, converged,
    )


def step_injections(grid: GridModel, load_p, load_q, sgen_p, sgen_q):
    """Constant-power, -current and -impedance bus injections of one step [p.u.], internal order."""
    n_int = grid.n_internal
    on = grid.load_internal >= 0
    bus = grid.load_internal[on]
    p = load_p[on] * grid.load_factor[on]
    q = load_q[on] * grid.load_factor[on]
    zip_shares = grid.load_zip[:, on]
    parts = []
    for share_p, share_q in ((0, 3), (1, 4), (2, 5)):
        s = -(p * zip_shares[share_p] + 1j * q * zip_shares[share_q])
        parts.append(np.bincount(bus, weights=s.real, minlength=n_int)
                     + 1j * np.bincount(bus, weights=s.imag, minlength=n_int))
    g_on = grid.sgen_internal >= 0
    g = (sgen_p[g_on] + 1j * sgen_q[g_on]) * grid.sgen_factor[g_on]
    gbus = grid.sgen_internal[g_on]
    parts[0] = parts[0] + grid.s_base + np.bincount(gbus, weights=g.real, minlength=n_int) \
        + 1j * np.bincount(gbus, weights=g.imag, minlength=n_int)
    return parts[0], parts[1], parts[2]


def newton_step(grid: GridModel, s_const, s_i, s_z, v_start, max_iter: int = 30):
    """Polar Newton–Raphson for one step (PV buses hold their magnitude) → (V, iterations, ok)."""
    ybus = grid.ybus
    pvpq = np.concatenate([grid.pv, grid.pq])
    pq = grid.pq
    v = v_start.astype(complex).copy()
    v[grid.ref] = grid.v_ref
    npvpq = len(pvpq)
    for it in range(max_iter + 1):
        vm = np.abs(v)
        mismatch = v * np.conj(ybus @ v) - (s_const + s_i * vm + s_z * vm**2)
        f = np.concatenate([mismatch[pvpq].real, mismatch[pq].imag])
        if f.size == 0 or np.max(np.abs(f)) < NEWTON_TOLERANCE_PU:
            return v, it, True
        if it == max_iter:
            break
        i_bus = ybus @ v
        diag_v = sp.diags(v)
        diag_vnorm = sp.diags(v / vm)
        ds_dvm = diag_v @ np.conj(ybus @ diag_vnorm) + sp.diags(np.conj(i_bus) * v / vm)
        ds_dva = 1j * diag_v @ np.conj(sp.diags(i_bus) - ybus @ diag_v)
        ds_dvm = ds_dvm - sp.diags(s_i + 2.0 * s_z * vm)
        ds_dvm, ds_dva = sp.csr_matrix(ds_dvm), sp.csr_matrix(ds_dva)
        jac = sp.bmat([
            [ds_dva[pvpq][:, pvpq].real, ds_dvm[pvpq][:, pq].real],
            [ds_dva[pq][:, pvpq].imag, ds_dvm[pq][:, pq].imag],
        ], format="csc")
        dx = -spla.spsolve(jac, f)
        va = np.angle(v)
        va[pvpq] += dx[:npvpq]
        vm[pq] += dx[npvpq:]
        v = vm * np.exp(1j * va)
    return v, max_iter, False


def _runpp_step(grid, load_p, load_q, sgen_p, sgen_q, v_guess):
    """Last resort: pandapower ``runpp`` on the model's net copy for one step."""
    import pandapower as pp

    net = grid.net
    net.load["p_mw"], net.load["q_mvar"] = load_p, load_q
    net.sgen["p_mw"], net.sgen["q_mvar"] = sgen_p, sgen_q
    try:
        pp.runpp(net, tolerance_mva=REFERENCE_TOLERANCE_MVA, max_iteration=50)
    except Exception:  # not converged: keep the Newton iterate, flagged
        return v_guess, 50, False
    return np.asarray(net._ppc["internal"]["V"], dtype=complex), int(net._ppc.get("iterations", 0) or 0), True


def run_timeseries(
    net_or_grid,
    load_p_mw,
    load_q_mvar,
    sgen_p_mw=None,
    sgen_q_mvar=None,
    *,
    chunk_steps: int = 8760,
    dtype=np.float64,
    block: int | None = None,
) -> xr.Dataset:
    """AC power flow for every time step → the labelled Dataset of the stage contract.

    Parameters
    ----------
    net_or_grid
        A pandapower net, or a `GridModel` from `prepare_grid` (reuse it across calls).
    load_p_mw, load_q_mvar
        ``[T, n_load]`` in ``net.load.index`` order [MW], [Mvar].
    sgen_p_mw, sgen_q_mvar
        ``[T, n_sgen]`` in ``net.sgen.index`` order [MW], [Mvar]; None → 0 (reactive power of
        static generators is 0 unless given).
    chunk_steps
        Time steps solved together; bounds the working memory (internal complex voltages and
        branch currents of one chunk) on top of the output arrays.
    dtype
        Floating dtype of the output arrays (``np.float32`` halves their memory).
    block
        Kernel block size (see `solve`); results do not depend on it.

    Returns
    -------
    xr.Dataset
        ``vm_pu``, ``va_degree`` ``[time, bus]``; ``line_loading_pct``, ``line_i_ka``
        ``[time, line]``; ``trafo_loading_pct``, ``trafo_i_hv_ka``, ``trafo_i_lv_ka``
        ``[time, trafo]``; ``p_slack_mw``, ``q_slack_mvar``, ``losses_mw``, ``converged``,
        ``iterations``, ``solver`` ``[time]``. ``time`` is 0..T−1 (the caller assigns
        datetimes); ``attrs``: ``steps_retried_newton``, ``steps_retried_pandapower``,
        ``steps_not_converged``, ``unenergized_buses``.
    """
    grid = net_or_grid if isinstance(net_or_grid, GridModel) else prepare_grid(net_or_grid)
    n_load, n_sgen = len(grid.load_internal), len(grid.sgen_internal)
    load_p = _as_steps(load_p_mw, None, n_load, "load_p_mw")
    n_steps = load_p.shape[0]
    load_q = _as_steps(load_q_mvar, n_steps, n_load, "load_q_mvar")
    sgen_p = _as_steps(sgen_p_mw, n_steps, n_sgen, "sgen_p_mw")
    sgen_q = _as_steps(sgen_q_mvar, n_steps, n_sgen, "sgen_q_mvar")

    n_bus, n_line, n_trafo = len(grid.bus_index), len(grid.line_index), len(grid.trafo_index)
    out = {
        "vm_pu": np.empty((n_steps, n_bus), dtype=dtype),
        "va_degree": np.empty((n_steps, n_bus), dtype=dtype),
        "line_loading_pct": np.empty((n_steps, n_line), dtype=dtype),
        "line_i_ka": np.empty((n_steps, n_line), dtype=dtype),
        "trafo_loading_pct": np.empty((n_steps, n_trafo), dtype=dtype),
        "trafo_i_hv_ka": np.empty((n_steps, n_trafo), dtype=dtype),
        "trafo_i_lv_ka": np.empty((n_steps, n_trafo), dtype=dtype),
        "p_slack_mw": np.empty(n_steps),
        "q_slack_mvar": np.empty(n_steps),
        "losses_mw": np.empty(n_steps),
        "converged": np.empty(n_steps, dtype=bool),
        "iterations": np.empty(n_steps, dtype=np.int32),
        "solver": np.empty(n_steps, dtype=np.int8),
    }
    for t0 in range(0, n_steps, chunk_steps):
        chunk = slice(t0, min(n_steps, t0 + chunk_steps))
        v, *flags = _solve_parts(grid, load_p[chunk], load_q[chunk], sgen_p[chunk],
                                 sgen_q[chunk], block, 100, True)
        _fill_outputs(grid, v.real, v.imag, *flags, load_p[chunk], load_q[chunk], sgen_p[chunk],
                      sgen_q[chunk], {name: array[chunk] for name, array in out.items()})
    return _to_dataset(grid, out)


def _fill_outputs(grid: GridModel, v_re, v_im, iterations, converged, solver,
                  load_p, load_q, sgen_p, sgen_q, out):
    n_steps = v_re.shape[0]
    s_ref = np.empty(n_steps, dtype=complex)
    loss = np.empty(n_steps)
    ref_rows = grid.ybus[grid.ref]
    pf_kernels.step_outputs(
        v_re, v_im, grid.bus_internal,
        grid.br_from, grid.br_to, grid.y_ff, grid.y_ft, grid.y_tf, grid.y_tt,
        *grid.line_ends, *grid.trafo_ends,
        grid.ref, ref_rows.indptr.astype(np.int64), ref_rows.indices.astype(np.int64),
        ref_rows.data.astype(complex),
        out["vm_pu"], out["va_degree"], out["line_loading_pct"], out["line_i_ka"],
        out["trafo_loading_pct"], out["trafo_i_hv_ka"], out["trafo_i_lv_ka"], s_ref, loss,
    )
    out["losses_mw"][:] = loss * grid.base_mva
    # Slack power: what the network draws at the slack buses minus the other injections there.
    on_ref = np.isin(grid.load_internal, grid.ref)
    g_on_ref = np.isin(grid.sgen_internal, grid.ref)
    s_other = (grid.s_base[grid.ref].sum()
               - (load_p[:, on_ref] + 1j * load_q[:, on_ref]) @ grid.load_factor[on_ref]
               + (sgen_p[:, g_on_ref] + 1j * sgen_q[:, g_on_ref]) @ grid.sgen_factor[g_on_ref])
    s_slack = (s_ref - s_other) * grid.base_mva
    out["p_slack_mw"][:] = s_slack.real
    out["q_slack_mvar"][:] = s_slack.imag
    out["converged"][:] = converged
    out["iterations"][:] = iterations
    out["solver"][:] = solver


_UNITS = {
    "vm_pu": ("p.u.", "bus voltage magnitude"),
    "va_degree": ("degree", "bus voltage angle"),
    "line_loading_pct": ("%", "line current over max_i_ka·df·parallel"),
    "line_i_ka": ("kA", "larger of the line's two end currents"),
    "trafo_loading_pct": ("%", "transformer current loading over sn_mva (pandapower 'current')"),
    "trafo_i_hv_ka": ("kA", "transformer high-voltage side current"),
    "trafo_i_lv_ka": ("kA", "transformer low-voltage side current"),
    "p_slack_mw": ("MW", "active power supplied by the ext_grid(s)"),
    "q_slack_mvar": ("Mvar", "reactive power supplied by the ext_grid(s)"),
    "losses_mw": ("MW", "active losses of all branches (lines, transformers, impedances)"),
    "converged": ("bool", "step converged"),
    "iterations": ("1", "iterations of the solver that produced the step"),
    "solver": ("1", "0 fixed point, 1 Newton retry, 2 pandapower runpp retry"),
}

_DIMS = {
    "vm_pu": ("time", "bus"), "va_degree": ("time", "bus"),
    "line_loading_pct": ("time", "line"), "line_i_ka": ("time", "line"),
    "trafo_loading_pct": ("time", "trafo"), "trafo_i_hv_ka": ("time", "trafo"),
    "trafo_i_lv_ka": ("time", "trafo"),
    "p_slack_mw": ("time",), "q_slack_mvar": ("time",), "losses_mw": ("time",),
    "converged": ("time",), "iterations": ("time",), "solver": ("time",),
}


def _to_dataset(grid: GridModel, out: dict) -> xr.Dataset:
    n_steps = len(out["converged"])
    ds = xr.Dataset(
        {name: (_DIMS[name], array, {"units": _UNITS[name][0], "long_name": _UNITS[name][1]})
         for name, array in out.items()},
        coords={
            "time": np.arange(n_steps),
            "bus": grid.bus_index.astype(np.int64),
            "line": grid.line_index.astype(np.int64),
            "trafo": grid.trafo_index.astype(np.int64),
        },
    )
    solver = out["solver"]
    ds.attrs.update({
        "steps_retried_newton": int(np.count_nonzero(solver == SOLVER_CODES["newton"])),
        "steps_retried_pandapower": int(np.count_nonzero(solver == SOLVER_CODES["pandapower"])),
        "steps_not_converged": int(np.count_nonzero(~out["converged"])),
        "unenergized_buses": grid.unenergized_buses.astype(np.int64).tolist(),
    })
    return _validated(ds)


def _validated(ds: xr.Dataset) -> xr.Dataset:
    """`validate` with a stand-in datetime axis: ``time`` stays the step index 0..T−1 here."""
    check = ds.assign_coords(time=np.arange(ds.sizes["time"]).astype("datetime64[ns]"))
    validate(check, _DIMS, stage="powerflow")
    return ds
