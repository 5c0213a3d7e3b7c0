"""The offer-assignment problem as plain arrays: what `offers.py` builds and `model.py` solves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from scenarios.errors import InputError


@dataclass(frozen=True)
class OfferProblem:
    """Per customer × offer expectations over the design steps.

    Shapes: ``n`` customers, ``k`` offers, ``t`` design steps. Offer 0 is the status quo
    (current tariff, no curtailment contract) and is always eligible. All money is per season
    (the scenario's simulated window scaled to the contract season where stated).

    Network limits (all optional) are linear in the customers' load changes:

    * transformers, dense form: ``trafo_delta_kw[n, k, t, r]`` is the change of each
      transformer's load; row ``trafo_base_kw[t, r] + Σ x·Δ ≤ trafo_limit_kw[r]``;
    * transformers, incidence form (scales to 100k customers): ``trafo_customer[r, n]``
      (1 where customer i is supplied through transformer r; scipy sparse or dense) and the same
      ``trafo_base_kw``/``trafo_limit_kw``; the change is ``Σ_i trafo_customer[r,i]·Δ[i,k,t]``;
    * lines of a radial feeder: the flow on a line is the net load downstream of it, so
      ``line_customer[l, n]`` is the incidence "customer i is downstream of line l" (the
      pipeline builds it as customer→bus × ``upstream_lines(net)`` bus×line), with
      ``line_base_kw[t, l]`` (flow without offers, positive downstream) and
      ``line_limit_kw[l]`` (thermal limit as active power, rated current × voltage × √3 × power
      factor at the design steps); row ``-limit ≤ base + Σ_i line_customer[l,i]·Δ ≤ limit``;
    * voltages by linear sensitivities around the base case (Jacobian of |V| to active power
      injections, from the power flow): ``voltage_sensitivity_pu_per_kw[b, n]`` is the change of
      monitored bus b's voltage per kW of extra *load* of customer i (normally ≤ 0),
      ``voltage_base_pu[t, b]``, and the band ``voltage_min_pu``/``voltage_max_pu``; row
      ``vmin ≤ v_base + Σ_i S[b,i]·Δ ≤ vmax``. The linearisation must be re-checked by a full
      power flow after the solve (the pipeline's evaluation does).
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
    # --- optional additions (optimizer engineer); defaults keep the original contract ---
    trafo_customer: np.ndarray | sp.sparray | sp.spmatrix | None = None  # [r, n] incidence
    line_customer: np.ndarray | sp.sparray | sp.spmatrix | None = None   # [l, n] incidence
    line_base_kw: np.ndarray | None = None    # [t, l] flow without offers [kW]
    line_limit_kw: np.ndarray | None = None   # [l] thermal limit as active power [kW]
    voltage_sensitivity_pu_per_kw: np.ndarray | sp.sparray | sp.spmatrix | None = None  # [b, n]
    voltage_base_pu: np.ndarray | None = None  # [t, b]
    voltage_min_pu: float = 0.0
    voltage_max_pu: float = np.inf
    customer_tier: np.ndarray | None = None     # [n] '<U1' credit tier, used by cluster mode
    customer_segment: np.ndarray | None = None  # [n] '<U12' segment, used by cluster mode

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.delta_kw.shape  # type: ignore[return-value]


def check_problem(problem: OfferProblem) -> None:
    """Raise `InputError` naming the first field whose shape or values break the contract."""
    if problem.delta_kw.ndim != 3:
        raise InputError(f"OfferProblem.delta_kw must be [n, k, t], got shape {problem.delta_kw.shape}")
    n, k, t = problem.shape
    expect = {
        "customer_ids": (n,),
        "base_kw": (t,),
        "acceptance": (n, k),
        "incentive_eur": (n, k),
        "bill_change_eur": (n, k),
        "revenue_change_eur": (n, k),
        "bad_debt_eur": (n, k),
        "satisfaction": (n, k),
        "eligible": (n, k),
    }
    for name, shape in expect.items():
        arr = np.asarray(getattr(problem, name))
        if arr.shape != shape:
            raise InputError(f"OfferProblem.{name} has shape {arr.shape}, expected {shape}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise InputError(f"OfferProblem.{name} contains NaN or infinite values")
    if len(problem.offer_names) != k:
        raise InputError(f"OfferProblem.offer_names has {len(problem.offer_names)} names, expected {k}")
    if not np.isfinite(problem.delta_kw).all():
        raise InputError("OfferProblem.delta_kw contains NaN or infinite values")
    if not np.asarray(problem.eligible)[:, 0].all():
        bad = problem.customer_ids[~np.asarray(problem.eligible)[:, 0]][0]
        raise InputError(f"OfferProblem.eligible: status quo (offer 0) not eligible for customer {bad}")
    if problem.trafo_limit_kw is not None:
        r = np.asarray(problem.trafo_limit_kw).shape[0]
        if problem.trafo_base_kw is None or np.asarray(problem.trafo_base_kw).shape != (t, r):
            raise InputError(f"OfferProblem.trafo_base_kw must be [t={t}, r={r}] with trafo_limit_kw")
        if problem.trafo_delta_kw is None and problem.trafo_customer is None:
            raise InputError("OfferProblem.trafo_limit_kw needs trafo_delta_kw or trafo_customer")
        if problem.trafo_delta_kw is not None and problem.trafo_delta_kw.shape != (n, k, t, r):
            raise InputError(
                f"OfferProblem.trafo_delta_kw has shape {problem.trafo_delta_kw.shape}, "
                f"expected {(n, k, t, r)}"
            )
        if problem.trafo_customer is not None and problem.trafo_customer.shape != (r, n):
            raise InputError(f"OfferProblem.trafo_customer must be [r={r}, n={n}]")
    if problem.line_limit_kw is not None:
        nl = np.asarray(problem.line_limit_kw).shape[0]
        if problem.line_customer is None or problem.line_customer.shape != (nl, n):
            raise InputError(f"OfferProblem.line_customer must be [l={nl}, n={n}] with line_limit_kw")
        if problem.line_base_kw is None or np.asarray(problem.line_base_kw).shape != (t, nl):
            raise InputError(f"OfferProblem.line_base_kw must be [t={t}, l={nl}]")
    if problem.voltage_sensitivity_pu_per_kw is not None:
        nb = problem.voltage_sensitivity_pu_per_kw.shape[0]
        if problem.voltage_sensitivity_pu_per_kw.shape != (nb, n):
            raise InputError(f"OfferProblem.voltage_sensitivity_pu_per_kw must be [b, n={n}]")
        if problem.voltage_base_pu is None or np.asarray(problem.voltage_base_pu).shape != (t, nb):
            raise InputError(f"OfferProblem.voltage_base_pu must be [t={t}, b={nb}]")
