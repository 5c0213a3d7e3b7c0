"""Explicit vector code for the radial sweeps of the power flow (Numba intrinsics, LLVM IR).

The radial kernel (`sim.pf_kernels.solve_fixed_point_forest`) keeps ``LANES`` time steps side by
side in ``[bus, lane]`` arrays and updates one bus row from another row *of the same array*
(a parent from its child, a child from its parent). LLVM cannot prove two rows of one array
disjoint, so its loop vectorizer leaves such loops scalar, and Numba runs without the SLP
vectorizer. These intrinsics load and store whole rows as ``<4 x double>`` vectors instead. Each
lane sees the same operations in the same order as the scalar expression written in the
docstring (no fused multiply-add, no reassociation), so results are bitwise those of scalar code.

The arrays must be C-contiguous float64 ``[rows, LANES]`` (the radial kernel allocates them).

The module also holds the two other things the kernels need that Numba does not express: working
arrays on the stack (`stack_doubles`) and result rows written with non-temporal stores
(`write_row`, `fence`).
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

LANES = 24
"""Time steps processed side by side [-]. A multiple of 4 (one AVX2 vector holds 4 doubles);
24 measured best on 1-MV-urban (16: −10 %, 32: −5 %), equal to 16 on the LV grids."""

_VECTOR = ir.VectorType(ir.DoubleType(), 4)
_I64 = ir.IntType(64)


def _is_lane_array(ty) -> bool:
    return isinstance(ty, types.Array) and ty.ndim == 2 and ty.layout == "C" and ty.dtype == types.float64


def _data(context, builder, array_type, value):
    return context.make_array(array_type)(context, builder, value).data


class _Rows:
    """Vector loads and stores of row ``j`` of lane arrays (``LANES`` doubles per row)."""

    def __init__(self, builder, row):
        self.builder = builder
        self.start = builder.mul(row, ir.Constant(_I64, LANES))

    def _pointer(self, data, part):
        offset = self.builder.add(self.start, ir.Constant(_I64, 4 * part))
        return self.builder.bitcast(self.builder.gep(data, [offset]), _VECTOR.as_pointer())

    def load(self, data, part):
        return self.builder.load(self._pointer(data, part), align=8)

    def store(self, value, data, part):
        self.builder.store(value, self._pointer(data, part), align=8)


def _splat(builder, scalar):
    vector = ir.Constant(_VECTOR, ir.Undefined)
    for i in range(4):
        vector = builder.insert_element(vector, scalar, ir.Constant(ir.IntType(32), i))
    return vector


def _complex_product(builder, ar, ai, br, bi):
    """``(ar·br − ai·bi, ar·bi + ai·br)`` in that order of operations."""
    return (builder.fsub(builder.fmul(ar, br), builder.fmul(ai, bi)),
            builder.fadd(builder.fmul(ar, bi), builder.fmul(ai, br)))


@intrinsic
def forward_row(typingctx, x_re, x_im, j, p, l_re, l_im):
    """Forward substitution of one tree column: for every lane ``k``

        x_re[p, k] -= l_re * x_re[j, k] - l_im * x_im[j, k]
        x_im[p, k] -= l_re * x_im[j, k] + l_im * x_re[j, k]
    """
    if not (_is_lane_array(x_re) and _is_lane_array(x_im)):
        return None
    sig = types.void(x_re, x_im, types.intp, types.intp, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        xr_data = _data(context, builder, signature.args[0], args[0])
        xi_data = _data(context, builder, signature.args[1], args[1])
        child, parent = _Rows(builder, args[2]), _Rows(builder, args[3])
        lr, li = _splat(builder, args[4]), _splat(builder, args[5])
        for part in range(LANES // 4):
            a, b = child.load(xr_data, part), child.load(xi_data, part)
            # l·x_j = (lr·a − li·b) + i(lr·b + li·a): _complex_product(lr, li, a, b) has that order.
            dr, di = _complex_product(builder, lr, li, a, b)
            parent.store(builder.fsub(parent.load(xr_data, part), dr), xr_data, part)
            parent.store(builder.fsub(parent.load(xi_data, part), di), xi_data, part)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def backward_row(typingctx, x_re, x_im, v_re, v_im, s_re, s_im, change, j, p, u_re, u_im, d_re,
                 d_im, c_re, c_im):
    """Backward substitution of one tree row, its change and its next right-hand side: for
    every lane ``k``

        xr = x_re[j, k] - (u_re * v_re[p, k] - u_im * v_im[p, k])
        xi = x_im[j, k] - (u_re * v_im[p, k] + u_im * v_re[p, k])
        nr = xr * d_re - xi * d_im;  ni = xr * d_im + xi * d_re          # new voltage
        er = nr - v_re[j, k];  ei = ni - v_im[j, k];  d2 = er * er + ei * ei
        change[k] = change[k] if (change[k] >= d2 or change[k] != change[k]) else d2
        v_re[j, k] = nr;  v_im[j, k] = ni
        inv = 1.0 / (nr * nr + ni * ni)
        x_re[j, k] = (s_re[j, k] * nr + s_im[j, k] * ni) * inv + c_re     # conj(s / v) + c
        x_im[j, k] = (s_re[j, k] * ni - s_im[j, k] * nr) * inv + c_im

    ``change`` is a C-contiguous float64 ``[LANES]`` array (largest squared change so far,
    NaN kept once seen).
    """
    arrays = (x_re, x_im, v_re, v_im, s_re, s_im)
    if not all(_is_lane_array(a) for a in arrays):
        return None
    if not (isinstance(change, types.Array) and change.ndim == 1 and change.layout == "C"
            and change.dtype == types.float64):
        return None
    sig = types.void(*arrays, change, types.intp, types.intp, *(types.float64,) * 6)

    def codegen(context, builder, signature, args):
        xr_data, xi_data, vr_data, vi_data, sr_data, si_data, change_data = (
            _data(context, builder, signature.args[i], args[i]) for i in range(7))
        row, parent = _Rows(builder, args[7]), _Rows(builder, args[8])
        ur, ui, dr, di, cr, ci = (_splat(builder, a) for a in args[9:])
        one = _splat(builder, ir.Constant(ir.DoubleType(), 1.0))
        lanes = _Rows(builder, ir.Constant(_I64, 0))
        for part in range(LANES // 4):
            vpr, vpi = parent.load(vr_data, part), parent.load(vi_data, part)
            wr, wi = _complex_product(builder, ur, ui, vpr, vpi)
            xr = builder.fsub(row.load(xr_data, part), wr)
            xi = builder.fsub(row.load(xi_data, part), wi)
            nr, ni = _complex_product(builder, xr, xi, dr, di)
            er = builder.fsub(nr, row.load(vr_data, part))
            ei = builder.fsub(ni, row.load(vi_data, part))
            d2 = builder.fadd(builder.fmul(er, er), builder.fmul(ei, ei))
            c = lanes.load(change_data, part)
            keep = builder.or_(builder.fcmp_ordered(">=", c, d2), builder.fcmp_unordered("uno", c, c))
            lanes.store(builder.select(keep, c, d2), change_data, part)
            row.store(nr, vr_data, part)
            row.store(ni, vi_data, part)
            inv = builder.fdiv(one, builder.fadd(builder.fmul(nr, nr), builder.fmul(ni, ni)))
            pr, pi = row.load(sr_data, part), row.load(si_data, part)
            re = builder.fadd(builder.fmul(pr, nr), builder.fmul(pi, ni))
            im = builder.fsub(builder.fmul(pr, ni), builder.fmul(pi, nr))
            row.store(builder.fadd(builder.fmul(re, inv), cr), xr_data, part)
            row.store(builder.fadd(builder.fmul(im, inv), ci), xi_data, part)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def stack_doubles(typingctx, count):
    """Pointer to ``count`` uninitialised float64 on the calling function's stack (32-byte
    aligned), for ``numba.carray``. LLVM knows such memory aliases nothing else, so it keeps
    lane-wide values in registers across the sweeps; the caller bounds ``count``."""
    if not isinstance(count, types.Integer):
        return None
    sig = types.CPointer(types.float64)(types.intp)

    def codegen(context, builder, signature, args):
        pointer = builder.alloca(ir.DoubleType(), size=args[0])
        pointer.align = 32
        return pointer

    return sig, codegen


@intrinsic
def write_row(typingctx, out, t, row):
    """``out[t, :] = row`` read as complex pairs (``row``: C-contiguous float64 ``[2·m]``,
    ``out``: C-contiguous complex128 ``[T, m]``), with non-temporal stores when ``out[t]`` is
    16-byte aligned. Call `fence` before the rows are read elsewhere.

    A result row is written once and not read again by the kernel: streaming it past the cache
    saves the read-for-ownership of every line, half the memory traffic of the result
    (1-MV-urban, two threads: 574 k against 506 k steps/s; 1-LV-rural1, 15 columns: the same).
    """
    if not (isinstance(out, types.Array) and out.ndim == 2 and out.layout == "C"
            and out.dtype == types.complex128):
        return None
    if not (isinstance(row, types.Array) and row.ndim == 1 and row.layout == "C"
            and row.dtype == types.float64):
        return None
    sig = types.void(out, types.intp, row)
    pair = ir.VectorType(ir.DoubleType(), 2)

    def codegen(context, builder, signature, args):
        out_array = context.make_array(signature.args[0])(context, builder, args[0])
        row_array = context.make_array(signature.args[2])(context, builder, args[2])
        count = builder.extract_value(out_array.shape, 1)
        start = builder.gep(builder.bitcast(out_array.data, ir.IntType(8).as_pointer()),
                            [builder.mul(args[1], builder.extract_value(out_array.strides, 0))])
        target = builder.bitcast(start, pair.as_pointer())
        source = builder.bitcast(row_array.data, pair.as_pointer())
        aligned = builder.icmp_unsigned(
            "==", builder.and_(builder.ptrtoint(start, _I64), ir.Constant(_I64, 15)),
            ir.Constant(_I64, 0))
        nontemporal = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        with builder.if_else(aligned) as (on_streaming, otherwise):
            with on_streaming:
                with cgutils.for_range(builder, count) as loop:
                    value = builder.load(builder.gep(source, [loop.index]), align=8)
                    store = builder.store(value, builder.gep(target, [loop.index]), align=16)
                    store.set_metadata("nontemporal", nontemporal)
            with otherwise:
                with cgutils.for_range(builder, count) as loop:
                    value = builder.load(builder.gep(source, [loop.index]), align=8)
                    builder.store(value, builder.gep(target, [loop.index]), align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def fence(typingctx):
    """A full memory fence (``mfence`` on x86, which also orders non-temporal stores; ``dmb``
    on ARM): `write_row`'s streaming stores are weakly ordered."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen
