"""Numba kernels of the batched AC power flow (only ``@njit`` functions, plain arrays in and out).

The solver is the implicit Z-bus Gauss method (fixed point on the bus current injections;
Chen, Chen, Hwang, Kotas, Chu, "Distribution system power flow analysis — a rigid approach",
IEEE Trans. Power Delivery 6(3), 1991; Teng, "A direct approach for distribution system load flow
solutions", IEEE Trans. Power Delivery 18(3), 2003): with the slack voltages ``V_S`` fixed,

    Y_NN · V_N^(k+1) = conj(S_N(V^(k)) / V_N^(k)) − Y_NS · V_S

solved with a sparse LU factorization of ``Y_NN`` computed once per grid (radial grids factor
with almost no fill-in). Each iteration costs one forward and one backward substitution.

Steps are processed in blocks of ``block`` time steps laid out ``[bus, step]`` so that the inner
loops run over steps (SIMD) and a block's working set stays in cache; blocks run in parallel
(``prange``). Every step iterates on its own from the same start (the no-load voltage) and its
result is taken at its own convergence, so results are bitwise identical for any block size,
chunking or thread count.

Two kernels share that scheme: `solve_fixed_point` for any factor (meshed grids, ZIP loads) and
`solve_fixed_point_forest` for radial grids with constant-power loads, whose factor is a forest:
one parent update per bus forward, one parent read per bus backward, run as explicit vector code
(`sim.pf_simd`) over small lane groups kept on the stack. It gives the same results bit for bit,
1.2–1.4× faster on the SimBench benchmark grids.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sim import pf_simd

jit = numba.njit(cache=True, nogil=True, error_model="numpy")
jit_parallel = numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)


@jit
def _assemble_constant_power(t0, nk, load_p, load_q, load_pos, load_factor, sgen_p, sgen_q,
                             sgen_pos, sgen_factor, zip_const_p, zip_const_q, s_base_re, s_base_im,
                             sp_re, sp_im):
    """Constant-power bus injections ``sp[j, k]`` [p.u.] of steps ``t0 .. t0 + nk − 1``; columns
    past ``nk`` (lanes without a step) get the base injection alone."""
    for j in range(s_base_re.shape[0]):
        for k in range(sp_re.shape[1]):
            sp_re[j, k] = s_base_re[j]
            sp_im[j, k] = s_base_im[j]
    # Step by step, so that the inputs ([time, element], row-major) are read along their rows:
    # reading them down the columns cost twice as much as all the iterations of a step.
    for k in range(nk):
        t = t0 + k
        for e in range(load_pos.shape[0]):
            j = load_pos[e]
            if j < 0:
                continue
            f = load_factor[e]
            sp_re[j, k] -= load_p[t, e] * f * zip_const_p[e]
            sp_im[j, k] -= load_q[t, e] * f * zip_const_q[e]
        for e in range(sgen_pos.shape[0]):
            j = sgen_pos[e]
            if j < 0:
                continue
            f = sgen_factor[e]
            sp_re[j, k] += sgen_p[t, e] * f
            sp_im[j, k] += sgen_q[t, e] * f


@jit
def _skip_non_finite(t0, nk, n, sp_re, sp_im, done, work, iterations_out, converged_out):
    """Mark steps whose bus injections are not finite as done (0 iterations, not converged);
    returns how many steps remain. ``work`` is scratch of at least ``nk``.

    The input check is folded into the assembly: a NaN or infinite input makes its bus injection
    non-finite (even at a zero factor), and x − x is NaN exactly for those.
    """
    for k in range(nk):
        work[k] = 0.0
    for j in range(n):
        for k in range(nk):
            work[k] += (sp_re[j, k] - sp_re[j, k]) + (sp_im[j, k] - sp_im[j, k])
    remaining = nk
    for k in range(nk):
        done[k] = work[k] != 0.0
        if done[k]:
            remaining -= 1
            iterations_out[t0 + k] = 0
            converged_out[t0 + k] = False
    return remaining


@jit
def _result_row(n_out, ref_col, v_ref_re, v_ref_im):
    """A result row (real, imaginary interleaved) holding the slack voltages; `_finish_converged`
    fills the other columns of each step."""
    row = np.zeros(2 * n_out)
    for i in range(ref_col.shape[0]):
        row[2 * ref_col[i]] = v_ref_re[i]
        row[2 * ref_col[i] + 1] = v_ref_im[i]
    return row


@jit
def _finish_converged(it, remaining, t0, nk, n, tol, max_iter, step_change, last_change, done,
                      v_re, v_im, out_col, row, v_out, iterations_out, converged_out):
    """Convergence test of every running step after iteration ``it``; a step that stops writes
    its voltages (its whole row of ``v_out``, through ``row``), iteration count and flag.
    Returns how many of the ``remaining`` steps still run; fences the streamed rows when none
    does."""
    for k in range(nk):
        if done[k]:
            continue
        change = np.sqrt(step_change[k])
        # A-posteriori error of the new iterate under linear contraction ρ estimated from
        # the last two changes: |V − V*| ≤ ρ/(1 − ρ)·|ΔV| (Ortega & Rheinboldt, "Iterative
        # Solution of Nonlinear Equations in Several Variables", 1970, §12.1).
        ok = change <= tol
        if not ok and it > 1 and change < 0.5 * last_change[k]:
            rho = change / last_change[k]
            ok = rho / (1.0 - rho) * change <= tol
        last_change[k] = change
        if ok or it == max_iter:
            done[k] = True
            remaining -= 1
            iterations_out[t0 + k] = it
            converged_out[t0 + k] = ok
            for j in range(n):
                row[2 * out_col[j]] = v_re[j, k]
                row[2 * out_col[j] + 1] = v_im[j, k]
            pf_simd.write_row(v_out, t0 + k, row)
    if remaining == 0:
        pf_simd.fence()
    return remaining


@jit
def _solve_block(
    t0, nk,
    load_p, load_q, load_pos, load_factor,
    sgen_p, sgen_q, sgen_pos, sgen_factor,
    zip_const_p, zip_i_p, zip_z_p, zip_const_q, zip_i_q, zip_z_q,
    s_base_re, s_base_im, c_re, c_im, rhs_pos,
    l_ptr, l_idx, l_re, l_im, u_ptr, u_idx, u_re, u_im, u_diag_inv_re, u_diag_inv_im,
    v0_re, v0_im, tol, max_iter, out_col,
    ref_col, v_ref_re, v_ref_im, v_out, iterations_out, converged_out,
):
    n = v0_re.shape[0]
    has_zip = False
    for e in range(load_pos.shape[0]):
        if zip_i_p[e] != 0.0 or zip_z_p[e] != 0.0 or zip_i_q[e] != 0.0 or zip_z_q[e] != 0.0:
            has_zip = True
    # Constant-power, constant-current and constant-impedance parts of each bus injection.
    sp_re = np.empty((n, nk))
    sp_im = np.empty((n, nk))
    _assemble_constant_power(t0, nk, load_p, load_q, load_pos, load_factor, sgen_p, sgen_q,
                             sgen_pos, sgen_factor, zip_const_p, zip_const_q, s_base_re, s_base_im,
                             sp_re, sp_im)
    zn = n if has_zip else 0  # voltage-dependent parts only when a load has them
    si_re = np.zeros((zn, nk))
    si_im = np.zeros((zn, nk))
    sz_re = np.zeros((zn, nk))
    sz_im = np.zeros((zn, nk))
    if has_zip:
        for k in range(nk):
            t = t0 + k
            for e in range(load_pos.shape[0]):
                j = load_pos[e]
                if j < 0:
                    continue
                f = load_factor[e]
                p = load_p[t, e] * f
                q = load_q[t, e] * f
                si_re[j, k] -= p * zip_i_p[e]
                si_im[j, k] -= q * zip_i_q[e]
                sz_re[j, k] -= p * zip_z_p[e]
                sz_im[j, k] -= q * zip_z_q[e]

    v_re = np.empty((n, nk))
    v_im = np.empty((n, nk))
    for j in range(n):
        for k in range(nk):
            v_re[j, k] = v0_re[j]
            v_im[j, k] = v0_im[j]
    x_re = np.empty((n, nk))
    x_im = np.empty((n, nk))
    row_re = np.empty(nk)
    row_im = np.empty(nk)
    done = np.empty(nk, dtype=np.bool_)
    step_change = np.empty(nk)
    last_change = np.empty(nk)
    row = _result_row(v_out.shape[1], ref_col, v_ref_re, v_ref_im)
    # Steps whose bus injections are not finite are not iterated (0 iterations marks them).
    remaining = _skip_non_finite(t0, nk, n, sp_re, sp_im, done, step_change, iterations_out,
                                 converged_out)
    for it in range(1, max_iter + 1):
        if remaining == 0:
            break
        # Right-hand side: current injections at the present voltage (in factor row order).
        for j in range(n):
            r = rhs_pos[j]
            cr = c_re[r]
            ci = c_im[r]
            if has_zip:
                for k in range(nk):
                    vr = v_re[j, k]
                    vi = v_im[j, k]
                    m2 = vr * vr + vi * vi
                    m = np.sqrt(m2)
                    pr = sp_re[j, k] + si_re[j, k] * m + sz_re[j, k] * m2
                    pi = sp_im[j, k] + si_im[j, k] * m + sz_im[j, k] * m2
                    # conj(s) * v / |v|^2 = conj(s / v)
                    x_re[r, k] = (pr * vr + pi * vi) / m2 + cr
                    x_im[r, k] = (pr * vi - pi * vr) / m2 + ci
            else:
                for k in range(nk):
                    vr = v_re[j, k]
                    vi = v_im[j, k]
                    inv = 1.0 / (vr * vr + vi * vi)
                    pr = sp_re[j, k]
                    pi = sp_im[j, k]
                    x_re[r, k] = (pr * vr + pi * vi) * inv + cr
                    x_im[r, k] = (pr * vi - pi * vr) * inv + ci
        # Forward substitution with the unit lower factor (column oriented). Row j is copied
        # out first so the updates of other rows vectorize over steps without aliasing.
        for j in range(n):
            if l_ptr[j] == l_ptr[j + 1]:
                continue
            for k in range(nk):
                row_re[k] = x_re[j, k]
                row_im[k] = x_im[j, k]
            for q in range(l_ptr[j], l_ptr[j + 1]):
                i = l_idx[q]
                lr = l_re[q]
                li = l_im[q]
                for k in range(nk):
                    x_re[i, k] -= lr * row_re[k] - li * row_im[k]
                    x_im[i, k] -= lr * row_im[k] + li * row_re[k]
        # Backward substitution with the upper factor (column oriented, diagonal inverted).
        for j in range(n - 1, -1, -1):
            dr = u_diag_inv_re[j]
            di = u_diag_inv_im[j]
            for k in range(nk):
                xr = x_re[j, k]
                xi = x_im[j, k]
                row_re[k] = xr * dr - xi * di
                row_im[k] = xr * di + xi * dr
                x_re[j, k] = row_re[k]
                x_im[j, k] = row_im[k]
            for q in range(u_ptr[j], u_ptr[j + 1]):
                i = u_idx[q]
                ur = u_re[q]
                ui = u_im[q]
                for k in range(nk):
                    x_re[i, k] -= ur * row_re[k] - ui * row_im[k]
                    x_im[i, k] -= ur * row_im[k] + ui * row_re[k]
        for k in range(nk):
            step_change[k] = 0.0
        for j in range(n):
            for k in range(nk):
                dr = x_re[j, k] - v_re[j, k]
                di = x_im[j, k] - v_im[j, k]
                d2 = dr * dr + di * di
                # Largest change, NaN kept once seen (a select, no branch): a step whose voltages
                # became NaN never looks converged.
                c = step_change[k]
                step_change[k] = c if (c >= d2 or c != c) else d2
                v_re[j, k] = x_re[j, k]
                v_im[j, k] = x_im[j, k]
        remaining = _finish_converged(it, remaining, t0, nk, n, tol, max_iter, step_change,
                                      last_change, done, v_re, v_im, out_col, row, v_out,
                                      iterations_out, converged_out)


@jit_parallel
def solve_fixed_point(
    load_p, load_q, load_pos, load_factor,
    sgen_p, sgen_q, sgen_pos, sgen_factor,
    zip_const_p, zip_i_p, zip_z_p, zip_const_q, zip_i_q, zip_z_q,
    s_base_re, s_base_im, c_re, c_im, rhs_pos,
    l_ptr, l_idx, l_re, l_im, u_ptr, u_idx, u_re, u_im, u_diag_inv_re, u_diag_inv_im,
    v0_re, v0_im, tol, max_iter, block, out_col,
    ref_col, v_ref_re, v_ref_im, v_out, iterations_out, converged_out,
):
    """Implicit Z-bus Gauss power flow for every time step (see the module docstring).

    A step stops when the estimated error of its iterate (see `_solve_block`: the step change
    scaled by the contraction measured from the last two changes) or the change itself is at
    most ``tol``.

    Parameters
    ----------
    load_p, load_q
        ``[T, n_load]`` load active [MW] and reactive [Mvar] power (consumption positive).
    load_pos, load_factor
        ``[n_load]`` factor column of the load's bus (-1: not solved, e.g. slack or out of
        service) and ``scaling · in_service / sn_mva`` [1/MVA].
    sgen_p, sgen_q, sgen_pos, sgen_factor
        Same for static generators (generation positive).
    zip_const_p, zip_i_p, zip_z_p, zip_const_q, zip_i_q, zip_z_q
        ``[n_load]`` shares (sum 1) of constant power / current / impedance [-].
    s_base_re, s_base_im
        ``[n]`` constant injection of every other element [p.u.], factor column order.
    c_re, c_im
        ``[n]`` ``−Y_NS · V_S`` in factor row order [p.u.].
    rhs_pos
        ``[n]`` factor row of each factor column (``perm_r`` after ``perm_c``).
    l_ptr, l_idx, l_re, l_im
        Strictly lower part of the unit lower factor, CSC.
    u_ptr, u_idx, u_re, u_im, u_diag_inv_re, u_diag_inv_im
        Strictly upper part of the upper factor, CSC, and its inverted diagonal.
    v0_re, v0_im
        ``[n]`` start voltage of every step [p.u.].
    tol
        Largest accepted (estimated) voltage error [p.u.]: ``c ≤ tol`` or
        ``ρ/(1 − ρ)·c ≤ tol`` with ``c = max |V^(k+1) − V^(k)|`` and ``ρ = c / c_prev < 0.5``.
    max_iter
        Iteration limit per step.
    block
        Time steps per block.
    out_col
        ``[n]`` column of ``v_out`` that receives each factor column.
    ref_col, v_ref_re, v_ref_im
        ``[n_ref]`` columns of ``v_out`` of the slack buses and their voltage [p.u.].
    v_out
        ``[T, n_out]`` complex solution [p.u.], C-contiguous; every row of a step that stops is
        written whole (``out_col`` and ``ref_col`` must cover the columns).
    iterations_out, converged_out
        ``[T]`` iterations used and convergence flag (written); 0 iterations (and not
        converged, voltages not written) for a step whose bus injections are not finite, i.e.
        a NaN or infinite value in an element the step reads.
    """
    n_steps = load_p.shape[0]
    n_blocks = (n_steps + block - 1) // block
    for b in numba.prange(n_blocks):
        t0 = b * block
        nk = min(block, n_steps - t0)
        _solve_block(
            t0, nk,
            load_p, load_q, load_pos, load_factor,
            sgen_p, sgen_q, sgen_pos, sgen_factor,
            zip_const_p, zip_i_p, zip_z_p, zip_const_q, zip_i_q, zip_z_q,
            s_base_re, s_base_im, c_re, c_im, rhs_pos,
            l_ptr, l_idx, l_re, l_im, u_ptr, u_idx, u_re, u_im, u_diag_inv_re, u_diag_inv_im,
            v0_re, v0_im, tol, max_iter, out_col,
            ref_col, v_ref_re, v_ref_im, v_out, iterations_out, converged_out,
        )


@jit
def _solve_forest_group(
    t0, nk,
    load_p, load_q, load_pos, load_factor,
    sgen_p, sgen_q, sgen_pos, sgen_factor, zip_const_p, zip_const_q,
    s_base_re, s_base_im, c_re, c_im, parent, l_re, l_im, u_re, u_im, u_diag_inv_re, u_diag_inv_im,
    v0_re, v0_im, tol, max_iter, out_col,
    ref_col, v_ref_re, v_ref_im, v_out, iterations_out, converged_out,
):
    n = v0_re.shape[0]
    lanes = pf_simd.LANES
    # Working arrays on the stack: LLVM then knows they alias nothing else and keeps lane-wide
    # values in registers across the sweeps (1-MV-urban, one thread: 256 k steps/s against
    # 208 k with heap arrays). The caller bounds n (`sim.powerflow.FOREST_MAX_BUSES`).
    shape = (n + 1, lanes)
    size = (n + 1) * lanes
    sp_re = numba.carray(pf_simd.stack_doubles(size), shape)
    sp_im = numba.carray(pf_simd.stack_doubles(size), shape)
    v_re = numba.carray(pf_simd.stack_doubles(size), shape)
    v_im = numba.carray(pf_simd.stack_doubles(size), shape)
    x_re = numba.carray(pf_simd.stack_doubles(size), shape)
    x_im = numba.carray(pf_simd.stack_doubles(size), shape)
    step_change = numba.carray(pf_simd.stack_doubles(lanes), (lanes,))
    last_change = numba.carray(pf_simd.stack_doubles(lanes), (lanes,))
    done = np.empty(lanes, dtype=np.bool_)
    row = _result_row(v_out.shape[1], ref_col, v_ref_re, v_ref_im)
    # Row n of v is a zero "ground" row: the parent of every root, so roots need no branch (row n
    # of the other arrays is written or not, but never read).
    for k in range(lanes):
        v_re[n, k] = 0.0
        v_im[n, k] = 0.0
    # Lanes past the last step carry the base injection, iterate harmlessly and are never read.
    _assemble_constant_power(t0, nk, load_p, load_q, load_pos, load_factor, sgen_p, sgen_q,
                             sgen_pos, sgen_factor, zip_const_p, zip_const_q, s_base_re, s_base_im,
                             sp_re, sp_im)
    remaining = _skip_non_finite(t0, nk, n, sp_re, sp_im, done, step_change, iterations_out,
                                 converged_out)
    # Start voltage and the first right-hand side; later ones come out of the backward sweep.
    for j in range(n):
        vr = v0_re[j]
        vi = v0_im[j]
        inv = 1.0 / (vr * vr + vi * vi)
        cr = c_re[j]
        ci = c_im[j]
        for k in range(lanes):
            v_re[j, k] = vr
            v_im[j, k] = vi
            pr = sp_re[j, k]
            pi = sp_im[j, k]
            x_re[j, k] = (pr * vr + pi * vi) * inv + cr
            x_im[j, k] = (pr * vi - pi * vr) * inv + ci
    for it in range(1, max_iter + 1):
        if remaining == 0:
            break
        for j in range(n):  # leaves first: x_parent −= L·x_j
            pf_simd.forward_row(x_re, x_im, j, parent[j], l_re[j], l_im[j])
        for k in range(lanes):
            step_change[k] = 0.0
        for j in range(n - 1, -1, -1):  # root first: V_j = (x_j − U·V_parent) / U_jj
            pf_simd.backward_row(x_re, x_im, v_re, v_im, sp_re, sp_im, step_change, j, parent[j],
                                 u_re[j], u_im[j], u_diag_inv_re[j], u_diag_inv_im[j], c_re[j],
                                 c_im[j])
        remaining = _finish_converged(it, remaining, t0, nk, n, tol, max_iter, step_change,
                                      last_change, done, v_re, v_im, out_col, row, v_out,
                                      iterations_out, converged_out)


@jit_parallel
def solve_fixed_point_forest(
    load_p, load_q, load_pos, load_factor,
    sgen_p, sgen_q, sgen_pos, sgen_factor, zip_const_p, zip_const_q,
    s_base_re, s_base_im, c_re, c_im, parent, l_re, l_im, u_re, u_im, u_diag_inv_re, u_diag_inv_im,
    v0_re, v0_im, tol, max_iter, groups_per_task, out_col,
    ref_col, v_ref_re, v_ref_im, v_out, iterations_out, converged_out,
):
    """`solve_fixed_point` for a radial grid with constant-power loads, with the same results
    bit for bit.

    On a forest (every factor column has at most one strictly-lower entry, its parent, mirrored
    in the upper factor, and rows are not permuted), the forward substitution is one update of
    the parent per bus and the backward substitution one read of the parent. Both run as
    explicit vector code over ``pf_simd.LANES`` steps side by side (`sim.pf_simd`), the backward
    sweep also producing each bus' change and next right-hand side, so a lane group's working
    set stays in L1/L2 cache. Each step still stops at its own convergence.

    Parameters
    ----------
    (as `solve_fixed_point`, without the ZIP shares of current and impedance and the row
    permutation)
    parent
        ``[n]`` factor column of each column's parent; ``n`` for a root (a bus next to a slack).
    l_re, l_im, u_re, u_im
        ``[n]`` lower factor entry (parent row, bus column) and upper factor entry (bus row,
        parent column); 0 for a root.
    groups_per_task
        Lane groups per parallel task (results do not depend on it).

    A lane group's working arrays live on the stack (see `_solve_forest_group`): ``n`` must stay
    within `sim.powerflow.FOREST_MAX_BUSES`.
    """
    lanes = pf_simd.LANES
    n_steps = load_p.shape[0]
    n_groups = (n_steps + lanes - 1) // lanes
    n_tasks = (n_groups + groups_per_task - 1) // groups_per_task
    for task in numba.prange(n_tasks):
        for g in range(task * groups_per_task, min(n_groups, (task + 1) * groups_per_task)):
            t0 = g * lanes
            _solve_forest_group(
                t0, min(lanes, n_steps - t0),
                load_p, load_q, load_pos, load_factor,
                sgen_p, sgen_q, sgen_pos, sgen_factor, zip_const_p, zip_const_q,
                s_base_re, s_base_im, c_re, c_im, parent, l_re, l_im, u_re, u_im,
                u_diag_inv_re, u_diag_inv_im, v0_re, v0_im, tol, max_iter, out_col,
                ref_col, v_ref_re, v_ref_im, v_out, iterations_out, converged_out,
            )


@jit_parallel
def all_finite(a):
    """True when no element of the 2-D array ``a`` is NaN or infinite (rows split over threads)."""
    bad = 0
    for t in numba.prange(a.shape[0]):
        for e in range(a.shape[1]):
            x = a[t, e]
            bad += 0 if x - x == 0.0 else 1  # x − x is NaN exactly for NaN and ±inf
    return bad == 0


#: Taylor coefficients (-1)^m / (2m + 1) of atan(w) = Σ c_m·w^(2m+1), m = 0..12: after the two
#: argument halvings in `angle_degree`, |w| ≤ tan(π/16) ≈ 0.199 and the first omitted term is
#: below 0.199^25 / 25 ≈ 1e-19.
_ATAN_TAYLOR = tuple((-1.0) ** m / (2 * m + 1) for m in range(13))
_TAN_PI_8 = 0.41421356237309503  # tan(π/8) = √2 − 1


@jit
def angle_degree(re, im):
    """``degrees(arctan2(im, re))`` [degree] without branches, 2–5× faster than libm's atan2.

    Octant reduction to ``a = min/max ∈ [0, 1]``, ``atan(a) = π/4 + atan((a − 1)/(a + 1))``
    above tan(π/8), the half-angle identity ``atan(z) = 2·atan(z / (1 + √(1 + z²)))``, then the
    Taylor series (see `_ATAN_TAYLOR`); agrees with NumPy's ``arctan2`` to a few ulps. The
    octant choices are 0/1 factors, not branches: a grid's buses sit in different octants (the
    150° MV/LV phase shift), which made branches mispredict.
    """
    ax = abs(re)
    ay = abs(im)
    # max(…, 5e-324): at re = im = 0 the ratio is 0/5e-324 = 0; otherwise nothing changes.
    a = min(ax, ay) / max(ax, ay, 5e-324)
    upper = 1.0 if a > _TAN_PI_8 else 0.0
    z = (a - upper) / (1.0 + upper * a)
    w = z / (1.0 + np.sqrt(1.0 + z * z))
    w2 = w * w
    poly = _ATAN_TAYLOR[12]
    for m in range(11, -1, -1):  # Horner; the constant trip count is unrolled
        poly = poly * w2 + _ATAN_TAYLOR[m]
    r = 2.0 * w * poly + upper * (0.25 * np.pi)
    swap = 1.0 if ay > ax else 0.0
    r = swap * (0.5 * np.pi) + (1.0 - 2.0 * swap) * r
    left = 1.0 if math.copysign(1.0, re) < 0.0 else 0.0  # −0.0 too, as atan2 does
    r = left * np.pi + (1.0 - 2.0 * left) * r
    return math.copysign(r, im) * (180.0 / np.pi)


@jit
def branch_currents_step(v_re, v_im, t, br_from, br_to, yff, yft, ytf, ytt, i_from, i_to):
    """End current magnitudes of every branch at step ``t`` → ``Σ Re(S_from + S_to)`` [p.u.]."""
    # Plain sqrt instead of abs()/hypot: magnitudes here are O(1), no overflow guard needed,
    # and hypot is several times slower.
    loss = 0.0
    for b in range(br_from.shape[0]):
        f = br_from[b]
        g = br_to[b]
        vfr, vfi = v_re[t, f], v_im[t, f]
        vtr, vti = v_re[t, g], v_im[t, g]
        a, c = yff[b], yft[b]
        cfr = a.real * vfr - a.imag * vfi + c.real * vtr - c.imag * vti
        cfi = a.real * vfi + a.imag * vfr + c.real * vti + c.imag * vtr
        a, c = ytf[b], ytt[b]
        ctr = a.real * vfr - a.imag * vfi + c.real * vtr - c.imag * vti
        cti = a.real * vfi + a.imag * vfr + c.real * vti + c.imag * vtr
        i_from[b] = np.sqrt(cfr * cfr + cfi * cfi)
        i_to[b] = np.sqrt(ctr * ctr + cti * cti)
        # Re(V·conj(I)) at both ends
        loss += vfr * cfr + vfi * cfi + vtr * ctr + vti * cti
    return loss


@jit
def end_maximum(i_from, i_to, end_branch, end_side, end_element, end_coef, out):
    """``out[e] = max over the element's ends of coef · |I_end|`` (0 for elements without ends)."""
    for e in range(out.shape[0]):
        out[e] = 0.0
    for q in range(end_branch.shape[0]):
        b = end_branch[q]
        value = (i_from[b] if end_side[q] == 0 else i_to[b]) * end_coef[q]
        e = end_element[q]
        # A select, not a branch: which end carries more current is a coin toss per step.
        out[e] = max(out[e], value)


@jit_parallel
def step_outputs(
    v_re, v_im, bus_internal,
    br_from, br_to, yff, yft, ytf, ytt,
    line_branch, line_side, line_element, line_ka, line_pct,
    trafo_branch, trafo_side, trafo_element, trafo_ka, trafo_pct,
    ref, ref_ptr, ref_idx, ref_val,
    vm_out, va_out, line_pct_out, line_ka_out, trafo_pct_out, trafo_hv_ka_out, trafo_lv_ka_out,
    s_ref_out, loss_out,
):
    """Every per-step result from the internal bus voltages ``v[T, n_internal]`` [p.u.].

    Bus magnitude [p.u.] and angle [degree] of the reported buses; line and transformer loading
    [%] and current [kA] as the largest scaled end current (see `end_maximum`; transformer
    sides separately); complex power drawn at the slack buses ``Σ_r V_r·conj(Y_r·V)`` [p.u.]
    (CSR rows ``ref_*`` of ``Y_bus``); branch losses [p.u.]. Output arrays may be float32.
    """
    n_steps = v_re.shape[0]
    n_branch = br_from.shape[0]
    n_bus = bus_internal.shape[0]
    n_line = line_pct_out.shape[1]
    n_trafo = trafo_pct_out.shape[1]
    hv = trafo_side == 0
    lv = trafo_side == 1
    hv_branch, hv_side, hv_element, hv_ka = trafo_branch[hv], trafo_side[hv], trafo_element[hv], trafo_ka[hv]
    lv_branch, lv_side, lv_element, lv_ka = trafo_branch[lv], trafo_side[lv], trafo_element[lv], trafo_ka[lv]
    # Scratch buffers are allocated once per group of steps, not per step.
    group = 256
    for g in numba.prange((n_steps + group - 1) // group):
        i_from = np.empty(n_branch)
        i_to = np.empty(n_branch)
        line_buf = np.empty(n_line)
        bus_re = np.empty(n_bus)
        bus_im = np.empty(n_bus)
        trafo_buf = np.empty(n_trafo)
        for t in range(g * group, min(n_steps, (g + 1) * group)):
            # Gathered first, so that the branch-free magnitude and angle loop vectorises.
            for i in range(n_bus):
                b = bus_internal[i]
                bus_re[i] = v_re[t, b]
                bus_im[i] = v_im[t, b]
            for i in range(n_bus):
                vm_out[t, i] = np.sqrt(bus_re[i] * bus_re[i] + bus_im[i] * bus_im[i])
                va_out[t, i] = angle_degree(bus_re[i], bus_im[i])
            loss_out[t] = branch_currents_step(v_re, v_im, t, br_from, br_to, yff, yft, ytf, ytt,
                                               i_from, i_to)
            end_maximum(i_from, i_to, line_branch, line_side, line_element, line_pct, line_buf)
            line_pct_out[t, :] = line_buf
            end_maximum(i_from, i_to, line_branch, line_side, line_element, line_ka, line_buf)
            line_ka_out[t, :] = line_buf
            end_maximum(i_from, i_to, trafo_branch, trafo_side, trafo_element, trafo_pct, trafo_buf)
            trafo_pct_out[t, :] = trafo_buf
            end_maximum(i_from, i_to, hv_branch, hv_side, hv_element, hv_ka, trafo_buf)
            trafo_hv_ka_out[t, :] = trafo_buf
            end_maximum(i_from, i_to, lv_branch, lv_side, lv_element, lv_ka, trafo_buf)
            trafo_lv_ka_out[t, :] = trafo_buf
            s = 0.0 + 0.0j
            for r in range(ref.shape[0]):
                current = 0.0 + 0.0j
                for q in range(ref_ptr[r], ref_ptr[r + 1]):
                    k = ref_idx[q]
                    current += ref_val[q] * (v_re[t, k] + 1j * v_im[t, k])
                s += (v_re[t, ref[r]] + 1j * v_im[t, ref[r]]) * np.conj(current)
            s_ref_out[t] = s
