"""Sequence networks of the unbalanced power flow, reduced and factored for its kernel.

`reduce_sequences` eliminates buses without injection on chains exactly (Kron reduction,
``Y_KK − Y_KE·Y_EE⁻¹·Y_EK``; Kron, "Tensor analysis of networks", 1939) and keeps the matrices
``w = −Y_EE⁻¹·Y_EK`` that recover them; `factorize_sequences` packs the sparse LU factors
(SuperLU) of the three reduced sequence matrices and the injection slots for
`sim.pf3_kernels.solve_sequence_fixed_point`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from scenarios.errors import InputError


def reduce_sequences(ybus, ref, injection_buses):
    """Kron reduction of the three sequence networks onto kept buses.

    Kept: slack, injection buses and buses with three or more neighbours in any sequence; the
    others (series chains and stubs without injection) are eliminated: no fill-in beyond one
    edge per chain. Returns (kept, eliminated, reduced matrices, recovery matrices ``w``).
    """
    pattern = sum(abs(y) for y in ybus).tocsr()
    pattern.setdiag(0)
    pattern.eliminate_zeros()
    degree = np.diff(pattern.indptr)
    keep = degree >= 3
    keep[ref] = True
    keep[injection_buses] = True
    kept = np.flatnonzero(keep)
    eliminated = np.flatnonzero(~keep)
    reduced, w = [], []
    for s, y in enumerate(ybus):
        y = y.tocsr()
        y_kk = y[kept][:, kept]
        if len(eliminated) == 0:
            reduced.append(sp.csr_matrix(y_kk))
            w.append(sp.csr_matrix((0, len(kept)), dtype=complex))
            continue
        y_ee = sp.csc_matrix(y[eliminated][:, eliminated])
        try:
            lu = spla.splu(y_ee)
        except RuntimeError:
            raise InputError(f"network: the {('zero', 'positive', 'negative')[s]}-sequence "
                             "network has a floating part (no path to earth)") from None
        x = lu.solve(np.asarray(y[eliminated][:, kept].todense()))
        reduced.append(sp.csr_matrix(np.asarray(y_kk.todense()) - y[kept][:, eliminated] @ x))
        w.append(sp.csr_matrix(-x))
    return kept, eliminated, reduced, tuple(w)


def factorize_sequences(reduced, kept, ref, v_ref, col_bus, col_phase, col_delta, col_factor):
    """LU factors of ``A_0 = Y0_red``, ``A_1`` (``Y1_red``, slack rows identity) and
    ``A_2 = Y2_red`` packed for the kernel, and the injection slot tables."""
    m = len(kept)
    position = np.full(int(max(kept.max(), col_bus.max(initial=0))) + 1, -1, dtype=np.int64)
    position[kept] = np.arange(m)
    ref_k = position[ref]
    is_ref = np.zeros(m, bool)
    is_ref[ref_k] = True
    c = np.zeros((3, m), dtype=complex)
    a1 = sp.diags(is_ref.astype(float)) + sp.diags((~is_ref).astype(float)) @ reduced[1]
    c[1, ref_k] = v_ref
    matrices = (reduced[0], sp.csr_matrix(a1), reduced[2])
    l_ptr = np.zeros((3, m + 1), dtype=np.int64)
    u_ptr = np.zeros((3, m + 1), dtype=np.int64)
    l_idx, l_val, u_idx, u_val = [], [], [], []
    d_inv = np.empty((3, m), dtype=complex)
    perm_r = np.empty((3, m), dtype=np.int64)
    perm_c = np.empty((3, m), dtype=np.int64)
    c_rows = np.empty((3, m), dtype=complex)
    v0 = np.empty((3, m), dtype=complex)
    l_off = u_off = 0
    for s, a in enumerate(matrices):
        try:
            lu = spla.splu(sp.csc_matrix(a), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                           options={"SymmetricMode": True})
        except RuntimeError:
            raise InputError(f"network: the {('zero', 'positive', 'negative')[s]}-sequence "
                             "network is singular (a part without path to earth)") from None
        # SuperLU: Pr·A·Pc = L·U; row i → factor row perm_r[i], column i → factor column perm_c[i]
        perm_r[s], perm_c[s] = lu.perm_r, lu.perm_c
        lower = sp.csc_matrix(sp.tril(lu.L, k=-1))
        upper = sp.csc_matrix(lu.U)
        strict = sp.csc_matrix(sp.triu(upper, k=1))
        lower.sort_indices()
        strict.sort_indices()
        l_ptr[s] = lower.indptr + l_off
        u_ptr[s] = strict.indptr + u_off
        l_off += lower.nnz
        u_off += strict.nnz
        l_idx.append(lower.indices)
        l_val.append(lower.data)
        u_idx.append(strict.indices)
        u_val.append(strict.data)
        d_inv[s] = 1.0 / upper.diagonal()
        c_rows[s, lu.perm_r] = c[s]
        v0[s, lu.perm_c] = lu.solve(c[s])
    slots = np.unique(col_bus[col_bus >= 0])
    slot_of_bus = np.full(len(position), -1, dtype=np.int64)
    slot_of_bus[slots] = np.arange(len(slots))
    col_slot = np.where(col_bus >= 0, slot_of_bus[np.maximum(col_bus, 0)], -1)
    slot_k = position[slots]
    l_val_all = np.concatenate(l_val).astype(complex)
    u_val_all = np.concatenate(u_val).astype(complex)
    kernel = {
        "col_slot": col_slot, "col_phase": col_phase, "col_delta": col_delta,
        "col_factor": col_factor,
        "slot_pos": np.ascontiguousarray(perm_c[:, slot_k]),
        "slot_row": np.ascontiguousarray(perm_r[:, slot_k]),
        "c_re": c_rows.real.copy(), "c_im": c_rows.imag.copy(),
        "l_ptr": l_ptr, "l_idx": np.concatenate(l_idx).astype(np.int64),
        "l_re": l_val_all.real.copy(), "l_im": l_val_all.imag.copy(),
        "u_ptr": u_ptr, "u_idx": np.concatenate(u_idx).astype(np.int64),
        "u_re": u_val_all.real.copy(), "u_im": u_val_all.imag.copy(),
        "d_re": d_inv.real.copy(), "d_im": d_inv.imag.copy(),
        "v0_re": v0.real.copy(), "v0_im": v0.imag.copy(),
    }
    return kernel, perm_c
