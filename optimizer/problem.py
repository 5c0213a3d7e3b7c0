"""The offer-assignment problem as plain arrays: what `offers.py` builds and `model.py` solves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OfferProblem:
    """Per customer × offer expectations over the design steps.

    Shapes: ``n`` customers, ``k`` offers, ``t`` design steps. Offer 0 is the status quo
    (current tariff, no curtailment contract) and is always eligible. All money is per season
    (the scenario's simulated window scaled to the contract season where stated).
    """

    customer_ids: np.ndarray        # [n] int64
    offer_names: tuple[str, ...]    # [k]
    base_kw: np.ndarray             # [t] feeder-head load without any offer [kW]
    delta_kw: np.ndarray            # [n, k, t] expected load change (acceptance-weighted) [kW]
    acceptance: np.ndarray          # [n, k] probability the customer accepts [-]
    incentive_eur: np.ndarray       # [n, k] expected incentive paid [EUR]
    bill_change_eur: np.ndarray     # [n, k] expected bill change for the customer [EUR]
    revenue_change_eur: np.ndarray  # [n, k] utility tariff-revenue change [EUR]
    bad_debt_eur: np.ndarray        # [n, k] expected bad debt (arrears prob × at-risk money) [EUR]
    satisfaction: np.ndarray        # [n, k] predicted satisfaction if offered [0-1]
    eligible: np.ndarray            # [n, k] bool, tier policy and segment rules
    step_h: float                   # length of a design step [h]
    peak_value_eur_per_kw: float
    incentive_weight: float = 1.0
    bad_debt_weight: float = 1.0
    satisfaction_value_eur: float = 0.0
    budget_eur: float = np.inf
    satisfaction_floor_mean: float = 0.0
    satisfaction_floor_customer: float = 0.0
    revenue_band_eur: float = np.inf          # |Σ revenue change| ≤ band
    trafo_delta_kw: np.ndarray | None = None  # [n, k, t, r] change of each trafo's load [kW]
    trafo_base_kw: np.ndarray | None = None   # [t, r]
    trafo_limit_kw: np.ndarray | None = None  # [r]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.delta_kw.shape  # type: ignore[return-value]
