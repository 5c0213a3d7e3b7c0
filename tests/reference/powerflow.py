"""Slow, obviously-correct twins of the power-flow kernels in `sim.pf_kernels`.

Same mathematics, written step by step with SciPy's sparse solver and complex NumPy arrays,
no factor reordering, no blocks.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def fixed_point_step(ybus, ref, v_ref, s_const, s_i, s_z, tol, max_iter):
    """Implicit Z-bus Gauss iteration for one step, in internal bus numbering.

    ``Y_NN · V_N^(k+1) = conj(S(V^(k)) / V^(k))_N − Y_NS · V_S`` from the no-load voltage,
    until the change ``c = max |V^(k+1) − V^(k)| ≤ tol`` or, with the contraction
    ``ρ = c / c_prev < 0.5``, the error bound ``ρ/(1 − ρ)·c ≤ tol``. Returns
    (V [all internal buses], iterations, converged).
    """
    n_int = ybus.shape[0]
    free = np.setdiff1d(np.arange(n_int), ref)
    y_nn = sp.csc_matrix(ybus[free][:, free])
    c = -(ybus[free][:, ref] @ v_ref)
    v = spla.spsolve(y_nn, c)
    s_const, s_i, s_z = s_const[free], s_i[free], s_z[free]
    last_change = np.inf
    for it in range(1, max_iter + 1):
        m = np.abs(v)
        s = s_const + s_i * m + s_z * m**2
        v_new = spla.spsolve(y_nn, np.conj(s / v) + c)
        change = np.max(np.abs(v_new - v))
        v = v_new
        ok = change <= tol
        if it > 1 and change < 0.5 * last_change:
            rho = change / last_change
            ok = ok or rho / (1.0 - rho) * change <= tol
        last_change = change
        if ok or it == max_iter:
            full = np.empty(n_int, dtype=complex)
            full[free] = v
            full[ref] = v_ref
            return full, it, bool(ok)
    raise AssertionError("unreachable")


def branch_currents(v, br_from, br_to, yff, yft, ytf, ytt):
    """End current magnitudes and Σ Re(S_from + S_to) of every branch, for ``v[T, n]``."""
    vf, vt = v[:, br_from], v[:, br_to]
    i_f = yff * vf + yft * vt
    i_t = ytf * vf + ytt * vt
    loss = (vf * np.conj(i_f) + vt * np.conj(i_t)).real.sum(axis=1)
    return np.abs(i_f), np.abs(i_t), loss


def end_loading(i_from, i_to, end_branch, end_side, end_element, end_coef, n_element):
    """``out[t, e] = max over the element's ends of coef · |I_end|`` (0 without ends)."""
    out = np.zeros((i_from.shape[0], n_element))
    for branch, side, element, coef in zip(end_branch, end_side, end_element, end_coef, strict=True):
        current = i_from[:, branch] if side == 0 else i_to[:, branch]
        out[:, element] = np.maximum(out[:, element], coef * current)
    return out


def step_outputs(v, bus_internal, br_from, br_to, yff, yft, ytf, ytt, line_ends, trafo_ends,
                 n_line, n_trafo, ybus, ref):
    """Every per-step result of `sim.pf_kernels.step_outputs`, as a dict of arrays."""
    i_from, i_to, loss = branch_currents(v, br_from, br_to, yff, yft, ytf, ytt)
    v_bus = v[:, bus_internal]
    hv, lv = trafo_ends[1] == 0, trafo_ends[1] == 1
    s_ref = (v[:, ref] * np.conj(np.asarray(ybus[ref] @ v.T).T)).sum(axis=1)
    return {
        "vm": np.abs(v_bus),
        "va": np.degrees(np.angle(v_bus)),
        "line_pct": end_loading(i_from, i_to, *line_ends[:3], line_ends[4], n_line),
        "line_ka": end_loading(i_from, i_to, *line_ends[:3], line_ends[3], n_line),
        "trafo_pct": end_loading(i_from, i_to, *trafo_ends[:3], trafo_ends[4], n_trafo),
        "trafo_hv_ka": end_loading(i_from, i_to, *(e[hv] for e in trafo_ends[:4]), n_trafo),
        "trafo_lv_ka": end_loading(i_from, i_to, *(e[lv] for e in trafo_ends[:4]), n_trafo),
        "s_ref": s_ref,
        "loss": loss,
    }


def all_finite(a):
    """Twin of `sim.pf_kernels.all_finite`."""
    return bool(np.isfinite(a).all())


def angle_degree(re, im):
    """Twin of `sim.pf_kernels.angle_degree`."""
    return np.degrees(np.arctan2(im, re))


def forest_forward_row(x_re, x_im, j, p, l_re, l_im):
    """Twin of `sim.pf_simd.forward_row` (rows of ``[bus, lane]`` arrays, updated in place)."""
    a, b = x_re[j].copy(), x_im[j].copy()
    x_re[p] = x_re[p] - (l_re * a - l_im * b)
    x_im[p] = x_im[p] - (l_re * b + l_im * a)


def forest_backward_row(x_re, x_im, v_re, v_im, s_re, s_im, change, j, p, u_re, u_im, d_re, d_im,
                        c_re, c_im):
    """Twin of `sim.pf_simd.backward_row` (updated in place)."""
    xr = x_re[j] - (u_re * v_re[p] - u_im * v_im[p])
    xi = x_im[j] - (u_re * v_im[p] + u_im * v_re[p])
    nr, ni = xr * d_re - xi * d_im, xr * d_im + xi * d_re
    d2 = (nr - v_re[j]) ** 2 + (ni - v_im[j]) ** 2
    change[:] = np.where((change >= d2) | np.isnan(change), change, d2)
    v_re[j], v_im[j] = nr, ni
    inv = 1.0 / (nr * nr + ni * ni)
    x_re[j] = (s_re[j] * nr + s_im[j] * ni) * inv + c_re
    x_im[j] = (s_re[j] * ni - s_im[j] * nr) * inv + c_im
