"""Numba kernel of the Lagrangian subproblem: each customer's best offer under row prices.

With the one-offer-per-customer rows kept and every coupling row priced, the inner problem of
the Lagrangian dual separates into one independent choice per customer (Geoffrion, Math. Prog.
Study 2 (1974)); this kernel makes that choice for all customers in one pass over the pairs.
"""

from __future__ import annotations

import numba
import numpy as np

jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@jit
def _best_offers(ptr, signal, value, price, best, top, runner_up):  # pragma: no cover - compiled
    n = ptr.size - 1
    q = signal.shape[1]
    for i in range(n):
        first = -np.inf
        second = -np.inf
        arg = ptr[i]
        for p in range(ptr[i], ptr[i + 1]):
            r = value[p]
            for j in range(q):
                r -= signal[p, j] * price[i, j]
            if r > first:
                second = first
                first = r
                arg = p
            elif r > second:
                second = r
        best[i] = arg
        top[i] = first
        runner_up[i] = second


def best_offers(
    ptr: np.ndarray, signal: np.ndarray, value: np.ndarray, price: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per customer, the pair of largest reduced value ``value[p] − Σ_j signal[p,j]·price[i,j]``.

    Parameters
    ----------
    ptr
        [n+1] customer ``i`` owns pairs ``ptr[i]:ptr[i+1]`` (at least one each).
    signal
        [p, q] per-pair load signals (Δ at the priced design steps) [kW].
    value
        [p] pair value after the scalar rows' prices [EUR].
    price
        [n, q] per-customer price of each signal [EUR/kW].

    Returns
    -------
    best
        [n] pair index of the best offer (the first one on ties).
    top, runner_up
        [n] best and second-best reduced value [EUR] (``-inf`` when only one pair).
    """
    n = ptr.size - 1
    if signal.shape[0] != value.size or price.shape != (n, signal.shape[1]):
        raise ValueError("best_offers: signal [p, q], value [p] and price [n, q] do not match")
    best = np.empty(n, dtype=np.int64)
    top = np.empty(n)
    runner_up = np.empty(n)
    _best_offers(
        np.ascontiguousarray(ptr, dtype=np.int64),
        np.ascontiguousarray(signal, dtype=np.float64),
        np.ascontiguousarray(value, dtype=np.float64),
        np.ascontiguousarray(price, dtype=np.float64),
        best, top, runner_up,
    )
    return best, top, runner_up
