"""Slow, obviously-correct twin of `customers.response.tou_response` (loops, no vectorization)."""

from __future__ import annotations

import numpy as np


def tou_response_loops(gross, day, segment, r, share, own, cross, conservation, scale):
    """Per customer, per day: segment energies, raw elasticity response, redistribution."""
    gross = np.maximum(np.asarray(gross, dtype=float), 0.0)
    out = gross.copy()
    k = len(r)
    if k == 0 or all(abs(x) < 1e-12 for x in r):
        return out
    for i in range(gross.shape[0]):
        for d in sorted(set(day.tolist())):
            steps = {j: [t for t in range(len(day)) if day[t] == d and segment[t] == j]
                     for j in range(k)}
            energy = [sum(gross[i, t] for t in steps[j]) for j in range(k)]
            raw = []
            for j in range(k):
                others = sum(share[q] * r[q] for q in range(k) if q != j) / max(1 - share[j], 1e-12)
                raw.append(energy[j] * max(1.0 + scale[i] * (own * r[j] + cross * others), 0.0))
            loss = [max(energy[j] - raw[j], 0.0) for j in range(k)]
            gain = [max(raw[j] - energy[j], 0.0) for j in range(k)]
            returned = (1.0 - conservation) * sum(loss)
            final = [energy[j] - loss[j] for j in range(k)]
            if sum(gain) > 0:
                for j in range(k):
                    final[j] += returned * gain[j] / sum(gain)
            else:
                cheapest = [j for j in range(k) if r[j] <= min(r) + 1e-12]
                held = sum(energy[j] for j in cheapest)
                for j in cheapest:
                    weight = (energy[j] / held if held > 0
                              else share[j] / sum(share[q] for q in cheapest))
                    final[j] += returned * weight
            for j in range(k):
                for t in steps[j]:
                    if energy[j] > 0:
                        out[i, t] = gross[i, t] * final[j] / energy[j]
                    else:
                        out[i, t] = final[j] / len(steps[j])
    return out
