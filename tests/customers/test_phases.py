"""Customer phases: parsing, drawing (balanced over the feeder), aggregation per phase."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from customers.phases import (
    PHASES,
    THREE_PHASE,
    draw_phases,
    parse_phases,
    phase_load_injections,
)
from scenarios.errors import InputError


def test_parse_phases_accepts_case_and_spaces_and_names_a_bad_row():
    np.testing.assert_array_equal(parse_phases(["a", " B", "c ", "ABC"], "c.csv"), [0, 1, 2, 3])
    with pytest.raises(InputError, match=r"c\.csv, line 3, column 'phase': 'ab' is not a, b, c or abc"):
        parse_phases(["a", "ab"], "c.csv")


def test_draw_phases_by_segment_and_device_balanced_along_the_feeder():
    rng = np.random.default_rng(0)
    n = 300
    segment = np.where(rng.random(n) < 0.85, "residential", "commercial")
    heat_pump = rng.random(n) < 0.2
    charger = np.where(rng.random(n) < 0.3, np.where(rng.random(n) < 0.5, 3.7, 11.0), 0.0)
    pv = np.where(rng.random(n) < 0.3, rng.uniform(2.0, 9.0, n), 0.0)
    bus = rng.integers(0, 40, n)
    ids = rng.permutation(n) + 100
    codes = draw_phases(segment, heat_pump, charger, pv, bus, ids)
    three = (segment != "residential") | heat_pump | (charger > 7.4) | (pv > 4.6)
    np.testing.assert_array_equal(codes == THREE_PHASE, three)
    counts = np.bincount(codes[~three], minlength=3)
    assert counts.max() - counts.min() <= 1
    # the same customers in another order get the same phases
    order = rng.permutation(n)
    again = draw_phases(segment[order], heat_pump[order], charger[order], pv[order], bus[order],
                        ids[order])
    np.testing.assert_array_equal(again, codes[order])
    assert len(PHASES) == 4


def test_phase_load_injections_put_single_phase_load_on_its_phase():
    # two load elements; customers 0, 1 on element 0 (phases a and abc), customer 2 on element 1 (c)
    incidence = sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    p = np.array([[3.0, 6.0], [9.0, 3.0], [1.5, 0.0]])  # [customer, time] kW
    q = 0.5 * p
    load_p, load_q = phase_load_injections(incidence, np.array([0, 3, 2]), p, q)
    assert load_p.shape == (2, 2, 3)
    np.testing.assert_allclose(load_p[0, 0], [0.006, 0.003, 0.003])
    np.testing.assert_allclose(load_p[1, 1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(load_p[0, 1], [0.0, 0.0, 0.0015])
    np.testing.assert_allclose(load_p.sum(axis=(1, 2)), p.sum(axis=0) / 1000.0)
    np.testing.assert_allclose(load_q, 0.5 * load_p)
