"""Slow, obviously-correct twin of the unbalanced power-flow kernel in `sim.pf3_kernels`.

The same sequence-frame fixed point on the full networks (no Kron reduction, no reordering),
one step at a time with SciPy's sparse solver and complex NumPy arrays.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

_A = np.exp(2j * np.pi / 3)
T_ABC = np.array([[1, 1, 1], [1, _A**2, _A], [1, _A, _A**2]])
T_012 = np.linalg.inv(T_ABC)
V_DELTA = np.array([[1, -1, 0], [0, 1, -1], [-1, 0, 1]])   # V_ab, V_bc, V_ca from V_abc
I_DELTA = np.array([[1, 0, -1], [-1, 1, 0], [0, -1, 1]])   # I_abc from I_ab, I_bc, I_ca


def bus_powers(p, q, col_bus, col_phase, col_delta, col_factor, n_bus):
    """Wye and delta injections ``[3, n_bus]`` [p.u.] of one step from injection columns."""
    s_wye = np.zeros((3, n_bus), dtype=complex)
    s_delta = np.zeros((3, n_bus), dtype=complex)
    for c in range(len(col_bus)):
        if col_bus[c] < 0:
            continue
        target = s_delta if col_delta[c] else s_wye
        target[col_phase[c], col_bus[c]] += (p[c] + 1j * q[c]) * col_factor[c]
    return s_wye, s_delta


def sequence_fixed_point_step(ybus, ref, v_ref, s_wye, s_delta, tol, max_iter):
    """``Y0·V0 = I0``, ``Y1·V1 = I1`` (slack fixed), ``Y2·V2 = I2`` with
    ``I_012 = T_012·conj(S_abc / V_abc)`` (wye; delta on line-to-line voltages), from the no-load
    voltage, until ``max |ΔV| ≤ tol`` or, with contraction ``ρ < 0.5``, ``ρ/(1 − ρ)·|ΔV| ≤ tol``.
    Returns (V_012 [3, n_bus], iterations, converged)."""
    y0, y1, y2 = (sp.csc_matrix(y) for y in ybus)
    n = y1.shape[0]
    free = np.setdiff1d(np.arange(n), ref)
    y1_nn = sp.csc_matrix(y1[free][:, free])
    c1 = -(y1[free][:, ref] @ v_ref)
    v = np.zeros((3, n), dtype=complex)
    v[1, ref] = v_ref
    v[1, free] = spla.spsolve(y1_nn, c1)
    last = np.inf
    for it in range(1, max_iter + 1):
        v_abc = T_ABC @ v
        i_abc = np.conj(s_wye / v_abc) + I_DELTA @ np.conj(s_delta / (V_DELTA @ v_abc))
        i_012 = T_012 @ i_abc
        new = np.empty_like(v)
        new[0] = spla.spsolve(y0, i_012[0])
        new[2] = spla.spsolve(y2, i_012[2])
        new[1, ref] = v_ref
        new[1, free] = spla.spsolve(y1_nn, i_012[1, free] + c1)
        change = np.max(np.abs(new - v))
        v = new
        ok = change <= tol
        if it > 1 and change < 0.5 * last:
            rho = change / last
            ok = ok or rho / (1.0 - rho) * change <= tol
        last = change
        if ok or it == max_iter:
            return v, it, bool(ok)
    raise AssertionError("unreachable")


def phase_outputs(v012, bus_internal, branch_from, branch_to, yf, yt, line_branch, line_col,
                  line_ka, line_pct, trafo_branch, trafo_col, trafo_pct, n_line, n_trafo):
    """Twin of `sim.pf3_kernels.phase_outputs` from full sequence voltages ``v012[T, 3, n]``."""
    v_bus = v012[:, :, bus_internal]
    v_abc = np.einsum("ps,tsb->tpb", T_ABC, v_bus)
    out = {f"vm_{ph}_pu": np.abs(v_abc[:, k]) for k, ph in enumerate("abc")}
    out.update({f"va_{ph}_degree": np.degrees(np.angle(v_abc[:, k])) for k, ph in enumerate("abc")})
    out["v0_pu"] = np.abs(v_bus[:, 0])
    out["vuf_pct"] = 100.0 * np.abs(v_bus[:, 2]) / np.abs(v_bus[:, 1])
    phases = np.stack([out[f"vm_{ph}_pu"] for ph in "abc"])
    out["vm_pu"] = np.take_along_axis(phases, np.argmax(np.abs(phases - 1.0), axis=0)[None], 0)[0]

    def currents(branch):
        i_f = np.stack([(yf[s][branch] @ v012[:, s].T).T for s in range(3)], axis=1)
        i_t = np.stack([(yt[s][branch] @ v012[:, s].T).T for s in range(3)], axis=1)
        return np.einsum("ps,tsb->tpb", T_ABC, i_f), np.einsum("ps,tsb->tpb", T_ABC, i_t)

    n_steps = v012.shape[0]
    i_f, i_t = currents(line_branch)
    i_abc = np.maximum(np.abs(i_f) * line_ka[0], np.abs(i_t) * line_ka[1])
    for k, ph in enumerate("abc"):
        out[f"line_i_{ph}_ka"] = np.zeros((n_steps, n_line))
        out[f"line_i_{ph}_ka"][:, line_col] = i_abc[:, k]
    out["line_i_n_ka"] = np.zeros((n_steps, n_line))
    out["line_i_n_ka"][:, line_col] = np.maximum(np.abs(i_f.sum(axis=1)) * line_ka[0],
                                                 np.abs(i_t.sum(axis=1)) * line_ka[1])
    out["line_loading_pct"] = np.zeros((n_steps, n_line))
    out["line_loading_pct"][:, line_col] = np.maximum(
        np.abs(i_f) * line_pct[0], np.abs(i_t) * line_pct[1]).max(axis=1)
    i_f, i_t = currents(trafo_branch)
    out["trafo_loading_pct"] = np.zeros((n_steps, n_trafo))
    out["trafo_loading_pct"][:, trafo_col] = np.maximum(
        np.abs(i_f) * trafo_pct[0], np.abs(i_t) * trafo_pct[1]).max(axis=1)
    return out
