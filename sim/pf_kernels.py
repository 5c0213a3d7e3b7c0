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
"""

from __future__ import annotations

import math

import numba
import numpy as np

jit = numba.njit(cache=True, nogil=True, error_model="numpy")
jit_parallel = numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)


@jit
def _solve_block(
    t0, nk,
    load_p, load_q, load_pos, load_factor,
    sgen_p, sgen_q, sgen_pos, sgen_factor,
    zip_const_p, zip_i_p, zip_z_p, zip_const_q, zip_i_q, zip_z_q,
    s_base_re, s_base_im, c_re, c_im, rhs_pos,
    l_ptr, l_idx, l_re, l_im, u_ptr, u_idx, u_re, u_im, u_diag_inv_re, u_diag_inv_im,
    v0_re, v0_im, tol, max_iter, out_col,
    v_re_out, v_im_out, iterations_out, converged_out,
):
    n = v0_re.shape[0]
    has_zip = False
    for e in range(load_pos.shape[0]):
        if zip_i_p[e] != 0.0 or zip_z_p[e] != 0.0 or zip_i_q[e] != 0.0 or zip_z_q[e] != 0.0:
            has_zip = True
    # Constant-power, constant-current and constant-impedance parts of each bus injection.
    sp_re = np.empty((n, nk))
    sp_im = np.empty((n, nk))
    zn = n if has_zip else 0  # voltage-dependent parts only when a load has them
    si_re = np.zeros((zn, nk))
    si_im = np.zeros((zn, nk))
    sz_re = np.zeros((zn, nk))
    sz_im = np.zeros((zn, nk))
    for j in range(n):
        for k in range(nk):
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
            p = load_p[t, e] * f
            q = load_q[t, e] * f
            sp_re[j, k] -= p * zip_const_p[e]
            sp_im[j, k] -= q * zip_const_q[e]
            if has_zip:
                si_re[j, k] -= p * zip_i_p[e]
                si_im[j, k] -= q * zip_i_q[e]
                sz_re[j, k] -= p * zip_z_p[e]
                sz_im[j, k] -= q * zip_z_q[e]
        for e in range(sgen_pos.shape[0]):
            j = sgen_pos[e]
            if j < 0:
                continue
            f = sgen_factor[e]
            sp_re[j, k] += sgen_p[t, e] * f
            sp_im[j, k] += sgen_q[t, e] * f

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
    done = np.zeros(nk, dtype=np.bool_)
    step_change = np.empty(nk)
    last_change = np.empty(nk)
    remaining = nk
    # Input check folded into the assembly: a NaN or infinite input makes its bus injection
    # non-finite (even at a zero factor), and x − x is NaN exactly for those. Such steps are
    # not iterated; iteration count 0 marks them for the caller.
    for k in range(nk):
        step_change[k] = 0.0
    for j in range(n):
        for k in range(nk):
            step_change[k] += (sp_re[j, k] - sp_re[j, k]) + (sp_im[j, k] - sp_im[j, k])
    for k in range(nk):
        if step_change[k] != 0.0:
            done[k] = True
            remaining -= 1
            iterations_out[t0 + k] = 0
            converged_out[t0 + k] = False
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
                    v_re_out[t0 + k, out_col[j]] = v_re[j, k]
                    v_im_out[t0 + k, out_col[j]] = v_im[j, k]


@jit_parallel
def solve_fixed_point(
    load_p, load_q, load_pos, load_factor,
    sgen_p, sgen_q, sgen_pos, sgen_factor,
    zip_const_p, zip_i_p, zip_z_p, zip_const_q, zip_i_q, zip_z_q,
    s_base_re, s_base_im, c_re, c_im, rhs_pos,
    l_ptr, l_idx, l_re, l_im, u_ptr, u_idx, u_re, u_im, u_diag_inv_re, u_diag_inv_im,
    v0_re, v0_im, tol, max_iter, block, out_col,
    v_re_out, v_im_out, iterations_out, converged_out,
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
        ``[n]`` column of ``v_*_out`` that receives each factor column.
    v_re_out, v_im_out
        ``[T, n_out]`` solution [p.u.] (columns ``out_col`` written, others untouched).
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
            v_re_out, v_im_out, iterations_out, converged_out,
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
