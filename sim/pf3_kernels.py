"""Numba kernel of the batched unbalanced (three-phase) power flow (only ``@njit`` functions).

The network is pandapower's sequence-frame model (zero, positive and negative sequence bus
admittance matrices ``Y0, Y1, Y2``), reduced onto the buses that carry an injection, the slack
and the branch points (`sim.powerflow3ph`). Single-phase and unbalanced loads couple the
three sequences only through their currents, so each iteration is

    I_abc = conj(S_abc / V_abc)                      (wye, per phase; delta on V_ab, V_bc, V_ca)
    I_012 = T_012 · I_abc,   V_abc = T_abc · V_012
    A_s · V_s^(k+1) = I_s(V^(k))                     s = 0, 1, 2

the implicit Z-bus Gauss method (Chen et al., "Distribution system power flow analysis — a rigid
approach", IEEE Trans. Power Delivery 6(3), 1991) in the sequence frame (Abdel-Akher, Nor,
Rashid, "Improved three-phase power-flow methods using sequence components", IEEE Trans. Power
Systems 20(3), 2005). ``A_0 = Y0`` and ``A_2 = Y2`` hold the external grid's sequence impedance
as a shunt at the slack; ``A_1`` is ``Y1`` with the slack rows replaced by identity rows whose
right-hand side is the slack voltage. Its fixed point is the one pandapower's ``runpp_3ph``
iterates to (Newton in the positive sequence, current injection in the others).

Each sequence has its own sparse LU factor (rows and columns permuted); voltages live in factor
column order. Steps are processed in blocks laid out ``[sequence, bus, step]`` so the inner loops
run over steps; blocks run in parallel. Every step iterates on its own from the no-load voltage
and stops at its own convergence: results do not depend on block size or thread count.
"""

from __future__ import annotations

import math

import numba
import numpy as np

jit = numba.njit(cache=True, nogil=True, error_model="numpy")
jit_parallel = numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)

# a = exp(j·120°): T_abc = [[1, 1, 1], [1, a², a], [1, a, a²]] (pandapower.auxiliary.Tabc)
_A_RE = -0.5
_A_IM = math.sqrt(3.0) / 2.0


@jit
def _assemble(t0, nk, p, q, col_slot, col_phase, col_delta, col_factor, sw_re, sw_im, sd_re,
              sd_im):
    """Per-phase wye and delta power injections ``[phase, slot, step]`` [p.u.] of a block."""
    sw_re[:] = 0.0
    sw_im[:] = 0.0
    sd_re[:] = 0.0
    sd_im[:] = 0.0
    for k in range(nk):
        t = t0 + k
        for c in range(col_slot.shape[0]):
            i = col_slot[c]
            if i < 0:
                continue
            f = col_factor[c]
            ph = col_phase[c]
            if col_delta[c]:
                sd_re[ph, i, k] += p[t, c] * f
                sd_im[ph, i, k] += q[t, c] * f
            else:
                sw_re[ph, i, k] += p[t, c] * f
                sw_im[ph, i, k] += q[t, c] * f


@jit
def _conj_s_over_v(s_re, s_im, v_re, v_im):
    """conj(s / v) = conj(s)·v / |v|²."""
    inv = 1.0 / (v_re * v_re + v_im * v_im)
    return (s_re * v_re + s_im * v_im) * inv, (s_re * v_im - s_im * v_re) * inv


@jit
def _injection_currents(nk, slot_pos, slot_row, has_delta, sw_re, sw_im, sd_re, sd_im, v_re, v_im,
                        x_re, x_im):
    """Sequence current injections of every slot into the right-hand sides ``x`` (factor rows)."""
    ar, ai = _A_RE, _A_IM
    for i in range(slot_pos.shape[1]):
        p0, p1, p2 = slot_pos[0, i], slot_pos[1, i], slot_pos[2, i]
        r0, r1, r2 = slot_row[0, i], slot_row[1, i], slot_row[2, i]
        for k in range(nk):
            v0r, v0i = v_re[0, p0, k], v_im[0, p0, k]
            v1r, v1i = v_re[1, p1, k], v_im[1, p1, k]
            v2r, v2i = v_re[2, p2, k], v_im[2, p2, k]
            # a·V1 and a²·V1 (a² = conj(a)), likewise for V2
            a1r, a1i = ar * v1r - ai * v1i, ar * v1i + ai * v1r
            b1r, b1i = ar * v1r + ai * v1i, ar * v1i - ai * v1r
            a2r, a2i = ar * v2r - ai * v2i, ar * v2i + ai * v2r
            b2r, b2i = ar * v2r + ai * v2i, ar * v2i - ai * v2r
            var, vai = v0r + v1r + v2r, v0i + v1i + v2i
            vbr, vbi = v0r + b1r + a2r, v0i + b1i + a2i
            vcr, vci = v0r + a1r + b2r, v0i + a1i + b2i
            iar, iai = _conj_s_over_v(sw_re[0, i, k], sw_im[0, i, k], var, vai)
            ibr, ibi = _conj_s_over_v(sw_re[1, i, k], sw_im[1, i, k], vbr, vbi)
            icr, ici = _conj_s_over_v(sw_re[2, i, k], sw_im[2, i, k], vcr, vci)
            if has_delta:
                abr, abi = _conj_s_over_v(sd_re[0, i, k], sd_im[0, i, k], var - vbr, vai - vbi)
                bcr, bci = _conj_s_over_v(sd_re[1, i, k], sd_im[1, i, k], vbr - vcr, vbi - vci)
                car, cai = _conj_s_over_v(sd_re[2, i, k], sd_im[2, i, k], vcr - var, vci - vai)
                iar, iai = iar + abr - car, iai + abi - cai
                ibr, ibi = ibr + bcr - abr, ibi + bci - abi
                icr, ici = icr + car - bcr, ici + cai - bci
            # I1 = (Ia + a·Ib + a²·Ic)/3, I2 = (Ia + a²·Ib + a·Ic)/3, I0 = (Ia + Ib + Ic)/3
            aibr, aibi = ar * ibr - ai * ibi, ar * ibi + ai * ibr
            bibr, bibi = ar * ibr + ai * ibi, ar * ibi - ai * ibr
            aicr, aici = ar * icr - ai * ici, ar * ici + ai * icr
            bicr, bici = ar * icr + ai * ici, ar * ici - ai * icr
            x_re[0, r0, k] += (iar + ibr + icr) / 3.0
            x_im[0, r0, k] += (iai + ibi + ici) / 3.0
            x_re[1, r1, k] += (iar + aibr + bicr) / 3.0
            x_im[1, r1, k] += (iai + aibi + bici) / 3.0
            x_re[2, r2, k] += (iar + bibr + aicr) / 3.0
            x_im[2, r2, k] += (iai + bibi + aici) / 3.0


@jit
def _lu_solve(s, nk, l_ptr, l_idx, l_re, l_im, u_ptr, u_idx, u_re, u_im, d_re, d_im, x_re, x_im,
              row_re, row_im):
    """``x[s] ← U⁻¹ L⁻¹ x[s]`` with sequence ``s``'s factor (column oriented, unit lower)."""
    n = d_re.shape[1]
    for j in range(n):
        if l_ptr[s, j] == l_ptr[s, j + 1]:
            continue
        for k in range(nk):
            row_re[k] = x_re[s, j, k]
            row_im[k] = x_im[s, j, k]
        for e in range(l_ptr[s, j], l_ptr[s, j + 1]):
            i = l_idx[e]
            lr = l_re[e]
            li = l_im[e]
            for k in range(nk):
                x_re[s, i, k] -= lr * row_re[k] - li * row_im[k]
                x_im[s, i, k] -= lr * row_im[k] + li * row_re[k]
    for j in range(n - 1, -1, -1):
        dr = d_re[s, j]
        di = d_im[s, j]
        for k in range(nk):
            xr = x_re[s, j, k]
            xi = x_im[s, j, k]
            row_re[k] = xr * dr - xi * di
            row_im[k] = xr * di + xi * dr
            x_re[s, j, k] = row_re[k]
            x_im[s, j, k] = row_im[k]
        for e in range(u_ptr[s, j], u_ptr[s, j + 1]):
            i = u_idx[e]
            ur = u_re[e]
            ui = u_im[e]
            for k in range(nk):
                x_re[s, i, k] -= ur * row_re[k] - ui * row_im[k]
                x_im[s, i, k] -= ur * row_im[k] + ui * row_re[k]


@jit
def _solve_block(t0, nk, p, q, col_slot, col_phase, col_delta, col_factor, slot_pos, slot_row,
                 c_re, c_im, l_ptr, l_idx, l_re, l_im, u_ptr, u_idx, u_re, u_im, d_re, d_im,
                 v0_re, v0_im, tol, max_iter, v_out, iterations_out, converged_out):
    n_slot = slot_pos.shape[1]
    m = v0_re.shape[1]
    has_delta = False
    for c in range(col_delta.shape[0]):
        if col_delta[c] and col_slot[c] >= 0:
            has_delta = True
    sw_re = np.empty((3, n_slot, nk))
    sw_im = np.empty((3, n_slot, nk))
    nd = n_slot if has_delta else 0
    sd_re = np.empty((3, nd, nk))
    sd_im = np.empty((3, nd, nk))
    _assemble(t0, nk, p, q, col_slot, col_phase, col_delta, col_factor, sw_re, sw_im, sd_re, sd_im)
    v_re = np.empty((3, m, nk))
    v_im = np.empty((3, m, nk))
    x_re = np.empty((3, m, nk))
    x_im = np.empty((3, m, nk))
    for s in range(3):
        for j in range(m):
            for k in range(nk):
                v_re[s, j, k] = v0_re[s, j]
                v_im[s, j, k] = v0_im[s, j]
    row_re = np.empty(nk)
    row_im = np.empty(nk)
    done = np.zeros(nk, dtype=np.bool_)
    change = np.empty(nk)
    last_change = np.full(nk, np.inf)
    remaining = nk
    for it in range(1, max_iter + 1):
        if remaining == 0:
            break
        for s in range(3):
            for j in range(m):
                cr = c_re[s, j]
                ci = c_im[s, j]
                for k in range(nk):
                    x_re[s, j, k] = cr
                    x_im[s, j, k] = ci
        _injection_currents(nk, slot_pos, slot_row, has_delta, sw_re, sw_im, sd_re, sd_im,
                            v_re, v_im, x_re, x_im)
        for s in range(3):
            _lu_solve(s, nk, l_ptr, l_idx, l_re, l_im, u_ptr, u_idx, u_re, u_im, d_re, d_im,
                      x_re, x_im, row_re, row_im)
        for k in range(nk):
            change[k] = 0.0
        for s in range(3):
            for j in range(m):
                for k in range(nk):
                    dr = x_re[s, j, k] - v_re[s, j, k]
                    di = x_im[s, j, k] - v_im[s, j, k]
                    d2 = dr * dr + di * di
                    # NaN propagates (a diverged step never reads as converged)
                    if not d2 <= change[k]:
                        change[k] = d2
                    v_re[s, j, k] = x_re[s, j, k]
                    v_im[s, j, k] = x_im[s, j, k]
        for k in range(nk):
            if done[k]:
                continue
            ch = math.sqrt(change[k])
            # A-posteriori error under linear contraction ρ estimated from the last two changes:
            # |V − V*| ≤ ρ/(1 − ρ)·|ΔV| (Ortega & Rheinboldt 1970, §12.1), as the balanced kernel.
            ok = ch <= tol
            if not ok and it > 1 and ch < 0.5 * last_change[k]:
                rho = ch / last_change[k]
                ok = rho / (1.0 - rho) * ch <= tol
            last_change[k] = ch
            if ok or it == max_iter:
                done[k] = True
                remaining -= 1
                iterations_out[t0 + k] = it
                converged_out[t0 + k] = ok
                for s in range(3):
                    for j in range(m):
                        v_out[t0 + k, s, j] = complex(v_re[s, j, k], v_im[s, j, k])


@jit_parallel
def solve_sequence_fixed_point(p, q, col_slot, col_phase, col_delta, col_factor, slot_pos,
                               slot_row, c_re, c_im, l_ptr, l_idx, l_re, l_im, u_ptr, u_idx, u_re,
                               u_im, d_re, d_im, v0_re, v0_im, tol, max_iter, block, v_out,
                               iterations_out, converged_out):
    """Unbalanced power flow of every step ``t`` (see the module docstring).

    Parameters
    ----------
    p, q
        ``[T, n_col]`` per-phase injection columns [MW], [Mvar] (sign and scaling in
        ``col_factor``).
    col_slot, col_phase, col_delta, col_factor
        ``[n_col]``: injection slot (-1: off), phase 0..2 (a, b, c; ab, bc, ca for delta),
        delta connection, factor [1/MVA] turning the column into a p.u. injection.
    slot_pos, slot_row
        ``[3, n_slot]`` factor column (voltage) and factor row (current) of each slot's bus per
        sequence.
    c_re, c_im
        ``[3, m]`` constant right-hand side in factor row order (the slack voltage rows of A_1).
    l_ptr, l_idx, l_re, l_im, u_ptr, u_idx, u_re, u_im, d_re, d_im
        Strict lower / upper factors of the three sequences (``[3, m + 1]`` pointers into the
        concatenated entries) and the inverted upper diagonals ``[3, m]``.
    v0_re, v0_im
        ``[3, m]`` start voltage (no load) in factor column order [p.u.].
    v_out
        ``[T, 3, m]`` complex out: sequence voltages in factor column order [p.u.].
    iterations_out, converged_out
        ``[T]`` out.
    """
    n_steps = p.shape[0]
    n_blocks = (n_steps + block - 1) // block
    for b in numba.prange(n_blocks):
        t0 = b * block
        nk = min(block, n_steps - t0)
        _solve_block(t0, nk, p, q, col_slot, col_phase, col_delta, col_factor, slot_pos, slot_row,
                     c_re, c_im, l_ptr, l_idx, l_re, l_im, u_ptr, u_idx, u_re, u_im, d_re, d_im,
                     v0_re, v0_im, tol, max_iter, v_out, iterations_out, converged_out)


@jit
def _to_phases(x0r, x0i, x1r, x1i, x2r, x2i):
    """T_abc · (x0, x1, x2) → (a, b, c) as six reals (a² = conj(a))."""
    ar, ai = _A_RE, _A_IM
    a1r, a1i = ar * x1r - ai * x1i, ar * x1i + ai * x1r
    b1r, b1i = ar * x1r + ai * x1i, ar * x1i - ai * x1r
    a2r, a2i = ar * x2r - ai * x2i, ar * x2i + ai * x2r
    b2r, b2i = ar * x2r + ai * x2i, ar * x2i - ai * x2r
    return (x0r + x1r + x2r, x0i + x1i + x2i, x0r + b1r + a2r, x0i + b1i + a2i,
            x0r + a1r + b2r, x0i + a1i + b2i)


@jit_parallel
def phase_outputs(v_kept, kept_of_internal, elim, w_ptr, w_idx, w_val, bus_internal,
                  br_from, br_to, y_ff, y_ft, y_tf, y_tt,
                  line_branch, line_col, line_ka, line_pct, trafo_branch, trafo_col, trafo_pct,
                  slack_branch, slack_end,
                  vm_a, vm_b, vm_c, va_a, va_b, va_c, v0_out, vuf_out, vm_worst,
                  i_a, i_b, i_c, i_n, line_loading, trafo_loading, s_slack_re, s_slack_im):
    """Per-phase results of every step from the kept buses' sequence voltages.

    ``vm_worst`` is the phase farthest from 1 p.u.; ``s_slack`` the three-phase power flowing
    into the branch ends ``slack_end`` (0 from, 1 to) of ``slack_branch`` at the slack buses,
    ``3·Σ_s V_s·conj(I_s)`` [p.u.] (``Σ_phases V·conj(I) = 3·Σ_seq V·conj(I)``).

    ``v_kept[T, 3, m]``; eliminated buses ``elim`` get ``w[s]·V_K`` (CSR ``[3, n_elim + 1]``
    pointers into the concatenated ``w_idx``/``w_val``). Branch ``b`` carries
    ``I_from,s = y_ff[s, b]·V_s[from] + y_ft[s, b]·V_s[to]`` (likewise ``I_to``); a line's phase
    current is the larger end's ``line_ka[end, l]·|I|``, its neutral current the larger end's
    ``line_ka·|3·I_0|``, its loading the worst phase's ``line_pct[end, l]·|I|``, a
    transformer's loading ``max trafo_pct[end, t]·|I|`` over phases and ends.
    """
    n_steps = v_kept.shape[0]
    n_int = kept_of_internal.shape[0]
    for t in numba.prange(n_steps):
        v_re = np.empty((3, n_int))
        v_im = np.empty((3, n_int))
        for j in range(n_int):
            k = kept_of_internal[j]
            if k >= 0:
                for s in range(3):
                    v_re[s, j] = v_kept[t, s, k].real
                    v_im[s, j] = v_kept[t, s, k].imag
        for s in range(3):
            for e in range(elim.shape[0]):
                acc_re = 0.0
                acc_im = 0.0
                for q in range(w_ptr[s, e], w_ptr[s, e + 1]):
                    w = w_val[q]
                    x = v_kept[t, s, w_idx[q]]
                    acc_re += w.real * x.real - w.imag * x.imag
                    acc_im += w.real * x.imag + w.imag * x.real
                v_re[s, elim[e]] = acc_re
                v_im[s, elim[e]] = acc_im
        for i in range(bus_internal.shape[0]):
            j = bus_internal[i]
            xar, xai, xbr, xbi, xcr, xci = _to_phases(v_re[0, j], v_im[0, j], v_re[1, j],
                                                      v_im[1, j], v_re[2, j], v_im[2, j])
            vm_a[t, i] = math.sqrt(xar * xar + xai * xai)
            vm_b[t, i] = math.sqrt(xbr * xbr + xbi * xbi)
            vm_c[t, i] = math.sqrt(xcr * xcr + xci * xci)
            va_a[t, i] = math.degrees(math.atan2(xai, xar))
            va_b[t, i] = math.degrees(math.atan2(xbi, xbr))
            va_c[t, i] = math.degrees(math.atan2(xci, xcr))
            v0_out[t, i] = math.sqrt(v_re[0, j] ** 2 + v_im[0, j] ** 2)
            vuf_out[t, i] = 100.0 * math.sqrt((v_re[2, j] ** 2 + v_im[2, j] ** 2)
                                              / (v_re[1, j] ** 2 + v_im[1, j] ** 2))
            worst = vm_a[t, i]
            if abs(vm_b[t, i] - 1.0) > abs(worst - 1.0):
                worst = vm_b[t, i]
            if abs(vm_c[t, i] - 1.0) > abs(worst - 1.0):
                worst = vm_c[t, i]
            vm_worst[t, i] = worst
        sr = 0.0
        si = 0.0
        for e in range(slack_branch.shape[0]):
            b = slack_branch[e]
            f = br_from[b]
            to = br_to[b]
            at = f if slack_end[e] == 0 else to
            for s in range(3):
                yf = y_ff[s, b] if slack_end[e] == 0 else y_tf[s, b]
                yt = y_ft[s, b] if slack_end[e] == 0 else y_tt[s, b]
                cr = (yf.real * v_re[s, f] - yf.imag * v_im[s, f]
                      + yt.real * v_re[s, to] - yt.imag * v_im[s, to])
                ci = (yf.real * v_im[s, f] + yf.imag * v_re[s, f]
                      + yt.real * v_im[s, to] + yt.imag * v_re[s, to])
                # V·conj(I)
                sr += 3.0 * (v_re[s, at] * cr + v_im[s, at] * ci)
                si += 3.0 * (v_im[s, at] * cr - v_re[s, at] * ci)
        s_slack_re[t] = sr
        s_slack_im[t] = si
        for c in range(line_loading.shape[1]):
            i_a[t, c] = 0.0
            i_b[t, c] = 0.0
            i_c[t, c] = 0.0
            i_n[t, c] = 0.0
            line_loading[t, c] = 0.0
        for c in range(trafo_loading.shape[1]):
            trafo_loading[t, c] = 0.0
        cur = np.empty(6)
        for group in range(2):
            branches = line_branch if group == 0 else trafo_branch
            for e in range(branches.shape[0]):
                b = branches[e]
                f = br_from[b]
                to = br_to[b]
                worst = 0.0
                ia = ib = ic = ineutral = 0.0
                for end in range(2):
                    for s in range(3):
                        yf = y_ff[s, b] if end == 0 else y_tf[s, b]
                        yt = y_ft[s, b] if end == 0 else y_tt[s, b]
                        cur[2 * s] = (yf.real * v_re[s, f] - yf.imag * v_im[s, f]
                                      + yt.real * v_re[s, to] - yt.imag * v_im[s, to])
                        cur[2 * s + 1] = (yf.real * v_im[s, f] + yf.imag * v_re[s, f]
                                          + yt.real * v_im[s, to] + yt.imag * v_re[s, to])
                    xar, xai, xbr, xbi, xcr, xci = _to_phases(cur[0], cur[1], cur[2], cur[3],
                                                              cur[4], cur[5])
                    ma = math.sqrt(xar * xar + xai * xai)
                    mb = math.sqrt(xbr * xbr + xbi * xbi)
                    mc = math.sqrt(xcr * xcr + xci * xci)
                    if group == 0:
                        ka = line_ka[end, e]
                        ia = max(ia, ma * ka)
                        ib = max(ib, mb * ka)
                        ic = max(ic, mc * ka)
                        ineutral = max(ineutral, 3.0 * math.sqrt(cur[0] ** 2 + cur[1] ** 2) * ka)
                        coef = line_pct[end, e]
                    else:
                        coef = trafo_pct[end, e]
                    worst = max(worst, max(ma, max(mb, mc)) * coef)
                if group == 0:
                    c = line_col[e]
                    i_a[t, c] = ia
                    i_b[t, c] = ib
                    i_c[t, c] = ic
                    i_n[t, c] = ineutral
                    line_loading[t, c] = worst
                else:
                    trafo_loading[t, trafo_col[e]] = worst
