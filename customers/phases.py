"""The phase each customer is connected to: ``a``, ``b``, ``c`` (single-phase) or ``abc``.

Low-voltage homes, small EV chargers and small rooftop PV connect to one phase; businesses,
heat pumps, fast chargers and larger PV connect to all three. Measured customers bring their
phase in the customers file (``phase`` column); synthetic customers get one drawn from their
segment and devices (`draw_phases`), the single-phase ones spread evenly over a, b, c along the
feeder. `phase_load_injections` aggregates customer loads onto (load element, phase) for the
unbalanced power flow (`sim.powerflow3ph`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from scenarios.errors import InputError

PHASES = ("a", "b", "c", "abc")
"""Phase codes 0, 1, 2 (single phase) and 3 (three-phase) in this order."""

THREE_PHASE = 3

SINGLE_PHASE_EV_MAX_KW = 7.4
"""Largest single-phase EV charger [kW] (32 A at 230 V; IEC 61851 mode 3, one phase)."""

SINGLE_PHASE_PV_MAX_KWP = 4.6
"""Largest single-phase PV inverter [kVA] (VDE-AR-N 4105 unbalance limit)."""


def parse_phases(values, where: str) -> np.ndarray:
    """Phase codes ``[n]`` int8 from text ``a``/``b``/``c``/``abc`` (any case, spaces ignored).

    Raises
    ------
    InputError
        A value is not a, b, c or abc; the message names ``where`` and the row (header = line 1).
    """
    text = [str(v).strip().lower() for v in values]
    codes = np.empty(len(text), dtype=np.int8)
    for i, value in enumerate(text):
        if value not in PHASES:
            raise InputError(f"{where}, line {i + 2}, column 'phase': '{values[i]}' is not "
                             "a, b, c or abc")
        codes[i] = PHASES.index(value)
    return codes


def draw_phases(segment: np.ndarray, has_heat_pump: np.ndarray, ev_charger_kw: np.ndarray,
                pv_kwp: np.ndarray, bus: np.ndarray, customer_id: np.ndarray) -> np.ndarray:
    """Phase codes ``[customer]`` of synthetic customers.

    Three-phase: every non-residential segment, heat pumps, EV chargers above
    `SINGLE_PHASE_EV_MAX_KW` and PV above `SINGLE_PHASE_PV_MAX_KWP`. The rest (homes) take a, b,
    c in turn in feeder order (bus, then customer id), so each phase carries a third of the
    single-phase homes on the feeder and neighbouring homes sit on different phases, as
    distribution operators connect them. Deterministic: no random draw, same input → same phases.
    """
    three = ((np.asarray(segment) != "residential") | np.asarray(has_heat_pump, bool)
             | (np.asarray(ev_charger_kw) > SINGLE_PHASE_EV_MAX_KW)
             | (np.asarray(pv_kwp) > SINGLE_PHASE_PV_MAX_KWP))
    codes = np.full(len(three), THREE_PHASE, dtype=np.int8)
    single = np.flatnonzero(~three)
    order = single[np.lexsort((np.asarray(customer_id)[single], np.asarray(bus)[single]))]
    codes[order] = np.arange(len(order)) % 3
    return codes


def phase_load_injections(incidence: sp.csr_matrix, phase: np.ndarray, p_kw: np.ndarray,
                          q_kvar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Customer loads ``[customer, time]`` [kW], [kvar] → per-phase load element series
    ``[time, load, 3]`` [MW], [Mvar]: a single-phase customer's load on its phase, a
    three-phase customer's in thirds."""
    phase = np.asarray(phase)
    # One weighted incidence per phase (1 on its own phase, 1/3 for three-phase customers): no
    # copy of the [customer, time] arrays.
    weights = [np.where(phase == k, 1.0, np.where(phase == THREE_PHASE, 1.0 / 3.0, 0.0))
               for k in range(3)]
    per_phase = [sp.csr_matrix(incidence @ sp.diags(w)) for w in weights]
    out = []
    for values in (p_kw, q_kvar):
        values = np.asarray(values, dtype=np.float64)
        stacked = np.stack([np.asarray(m @ values) for m in per_phase], axis=-1)  # [load, time, 3]
        out.append(np.ascontiguousarray(stacked.transpose(1, 0, 2)) / 1000.0)
    return out[0], out[1]
