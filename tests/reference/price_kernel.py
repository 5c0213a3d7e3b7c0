"""Slow, obviously-correct twin of `optimizer.price_kernel.best_offers` (plain loops)."""

from __future__ import annotations

import numpy as np


def best_offers_loops(ptr, signal, value, price):
    """Reduced value of every pair of every customer, then the first maximum and the runner-up."""
    n = len(ptr) - 1
    best = np.zeros(n, dtype=np.int64)
    top = np.zeros(n)
    runner_up = np.zeros(n)
    for i in range(n):
        scores = []
        for p in range(ptr[i], ptr[i + 1]):
            r = value[p] - sum(signal[p, j] * price[i, j] for j in range(signal.shape[1]))
            scores.append((r, p))
        first = max(r for r, _ in scores)
        best[i] = min(p for r, p in scores if r == first)
        top[i] = first
        rest = sorted((r for r, p in scores if p != best[i]), reverse=True)
        runner_up[i] = rest[0] if rest else -np.inf
    return best, top, runner_up
