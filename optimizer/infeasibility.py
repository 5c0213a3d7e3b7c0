"""Explain why no assignment satisfies the limits: elastic re-solve with a named slack per limit.

The elastic model (`ModelOptions(elastic=True)`) relaxes every limit by a non-negative slack
and minimises the scaled total slack (the "phase-one"/elastic programming idea, Brown & Graves
1975; Chinneck, *Feasibility and Infeasibility in Optimization*, 2008). Limits with slack, and
limits that are tight at that point, are the conflicting ones; each is then re-solved as the
*only* relaxable limit to say by how much relaxing it alone would restore feasibility.
Small problems are solved as MIPs; large ones through the LP relaxation (stated in the
message, the amounts are then lower estimates).
"""

from __future__ import annotations

import time

import highspy
import numpy as np

from optimizer.handoff import HighsModel, run_with_deadline, to_highs
from optimizer.lagrange_dual import coupling_rows
from optimizer.model import ModelOptions, build_model
from optimizer.problem import OfferProblem
from scenarios.schema import SolverConfig

#: Slack below this is zero (scaled units).
SLACK_TOLERANCE = 1e-6
#: Elastic problems up to this many customers are solved exactly as MIPs.
EXACT_MAX_CUSTOMERS = 500

_LIMIT_NAMES = {
    "budget": "budget_eur",
    "satisfaction_mean": "satisfaction_floor_mean",
    "revenue_up": "revenue_band_eur (upper side)",
    "revenue_down": "revenue_band_eur (lower side)",
    "trafo": "transformer limit",
    "line": "line limit",
    "voltage": "voltage band",
    "peak_cap": "limits.never_raise_peak (peak cap)",
}
#: Limits that are one row each (the others are per element and step).
_SINGLE_ROWS = ("budget", "satisfaction_mean", "revenue_up", "revenue_down", "peak_cap")
_UNITS = {"budget": "EUR", "satisfaction_mean": "", "revenue_up": "EUR", "revenue_down": "EUR",
          "trafo": "kW", "line": "kW", "voltage": "p.u.", "peak_cap": "kW"}


def _family(name: str) -> str:
    return name.partition(":")[0]


def describe(name: str) -> str:
    """Human name of a slack: ``trafo:2`` → ``transformer limit (trafo 2)``."""
    family, _, element = name.partition(":")
    label = _LIMIT_NAMES.get(family, family)
    return f"{label} ({family} {element})" if element else label


def _amount(name: str, value: float) -> str:
    unit = _UNITS.get(_family(name), "")
    return f"{value:.4g} {unit}".rstrip()


def _solve(hm: HighsModel, allowed: list[str], exact: bool, deadline: float,
           warm: bool = False) -> dict[str, float] | None:
    h = hm.highs
    for name, col in hm.slack_col.items():
        h.changeColBounds(col, 0.0, np.inf if name in allowed else 0.0)
    h.setOptionValue("solve_relaxation", not exact)
    # The elastic LP is highly degenerate (only slacks cost): interior point + crossover the
    # first time; a re-solve with other slacks allowed changes bounds only, so the dual simplex
    # goes on from the basis HiGHS kept.
    h.setOptionValue("solver", "choose" if exact else "simplex" if warm else "ipm")
    h.setOptionValue("run_crossover", "on")
    run_with_deadline(h, deadline)
    info = h.getInfo()
    if info.primal_solution_status != 2:
        if h.getModelStatus() in (highspy.HighsModelStatus.kInfeasible,
                                  highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return None
        return {}
    values = np.asarray(h.getSolution().col_value)
    return {name: float(values[col]) for name, col in hm.slack_col.items()}


def single_limit_conflicts(problem: OfferProblem, peak_cap_kw: float = np.inf,
                           rows=None) -> dict[str, float]:
    """Limits that no assignment can meet even on their own, and by how much at least.

    For each coupling row ``a·x ≤ b`` (`optimizer.lagrange_dual.coupling_rows`: peak rows under
    the cap, network rows, budget, satisfaction floor, revenue band) the smallest activity is
    ``Σ_i min_k a[i,k]`` — every customer on the offer that helps that row most. When it exceeds
    ``b`` the row is infeasible by itself; this needs no model and no solver, so it answers at
    any scale. Returns ``{slack name: shortfall}`` in the units of `describe`/`_amount` (the
    satisfaction floor as a mean), the largest step's shortfall for per-step limits. ``rows``
    (`CouplingRows` already built, e.g. with fewer peak steps) checks those rows instead.
    """
    if rows is None:
        rows = coupling_rows(problem, peak_cap_kw=peak_cap_kw)
    n = rows.n
    starts = rows.ptr[:-1]
    found: dict[str, float] = {}

    def note(name: str, excess: float, rhs: float) -> None:
        if excess > 1e-9 * max(1.0, abs(rhs)):
            found[name] = max(found.get(name, 0.0), excess)

    if rows.row_rhs.size and n:
        smin = np.minimum.reduceat(rows.signal, starts, axis=0)   # [customer, signal]
        smax = np.maximum.reduceat(rows.signal, starts, axis=0)
        cols = rows.row_signal
        uniform_min = np.where(rows.scale >= 0.0, rows.scale * smin[:, cols].sum(axis=0),
                               rows.scale * smax[:, cols].sum(axis=0))
        weighted = ((rows.weight.maximum(0.0) @ smin) + (rows.weight.minimum(0.0) @ smax))
        act_min = np.where(rows.uniform, uniform_min, weighted[np.arange(cols.size), cols])
        # An epigraph row holds −peak: it is short only when the capped peak cannot absorb it.
        rhs = rows.row_rhs + np.where(rows.row_peak, rows.peak_upper, 0.0)
        for r in np.flatnonzero(act_min > rhs):
            label = rows.row_label[r]
            name = "peak_cap" if label[0] == "peak" else f"{label[0]}:{label[1]}"
            note(name, float(act_min[r] - rhs[r]), float(rhs[r]))
    if rows.scalar_rhs.size and n:
        scalar_min = np.minimum.reduceat(rows.scalar_coef, starts, axis=1).sum(axis=1)
        for label, low, rhs in zip(rows.scalar_label, scalar_min, rows.scalar_rhs, strict=True):
            scale = n if label == "satisfaction_mean" else 1.0
            note(label, float(low - rhs) / scale, float(rhs) / scale)
    return found


def describe_single_limit_conflicts(alone: dict[str, float]) -> str:
    """The one-line message for `single_limit_conflicts`' result."""
    return "infeasible: " + ", ".join(
        f"{describe(s)} cannot be met even with every customer on the offer that helps it "
        f"most (short by {_amount(s, v)})" for s, v in alone.items())


def explain_infeasibility(problem: OfferProblem, config: SolverConfig,
                          peak_cap_kw: float = np.inf) -> str:
    """One line naming the conflicting limits and how much each would have to give.

    ``peak_cap_kw`` is the never-raise-peak cap [kW] the failed solve had (none by default).
    A limit that no assignment meets even alone is named at once (`single_limit_conflicts`);
    otherwise an elastic re-solve finds the combination that conflicts.
    """
    alone = single_limit_conflicts(problem, peak_cap_kw)
    if alone:
        return describe_single_limit_conflicts(alone)
    deadline = time.perf_counter() + config.time_limit_s
    model = build_model(problem, ModelOptions(elastic=True, peak_cap_kw=peak_cap_kw))
    hm = to_highs(model, threads=config.threads)
    exact = problem.shape[0] <= EXACT_MAX_CUSTOMERS
    names = list(hm.slack_col)
    slack = _solve(hm, names, exact, deadline)
    if not slack:
        return "no assignment satisfies the limits (the elastic re-solve found no point either)"
    violated = [s for s, v in slack.items() if v > SLACK_TOLERANCE]
    tight = [s for s in _tight_limits(hm, model) if s not in violated]
    families = list(dict.fromkeys(_group(s) for s in names))
    fixes, blocked = [], []
    for fam in families:
        allowed = [s for s in names if _group(s) == fam]
        only = _solve(hm, allowed, exact, deadline, warm=True)
        if only is None:
            blocked.append(describe(fam))
        elif not only:
            blocked.append(f"{describe(fam)} (undecided in time)")
        else:
            total = sum(v for s, v in only.items() if s in allowed)
            worst = max((v, s) for s, v in only.items() if s in allowed)
            fixes.append(
                f"{describe(worst[1])} +{_amount(worst[1], worst[0])}"
                if len(allowed) == 1 or total == worst[0]
                else f"{describe(fam)} +{_amount(worst[1], worst[0])} at {worst[1]} "
                f"(+{_amount(worst[1], total)} over all)"
            )
    short = ", ".join(f"{describe(s)} short by {_amount(s, slack[s])}" for s in violated)
    estimate = "" if exact else " (LP estimate)"
    text = f"infeasible{estimate}: {short}"
    if tight:
        text += "; binding with it: " + ", ".join(describe(s) for s in tight)
    if fixes:
        text += "; relaxing any one of these alone suffices: " + ", ".join(fixes)
    else:
        text += "; no single limit can restore feasibility alone"
    return text


def _group(name: str) -> str:
    family = _family(name)
    return family if family in ("trafo", "line", "voltage") else name


def _tight_limits(hm: HighsModel, model) -> list[str]:
    """Named limits whose row is at its bound in the elastic solution (partners in the conflict)."""
    h = hm.highs
    values = np.asarray(h.getSolution().row_value)
    lp = h.getLp()
    lower, upper = np.asarray(lp.row_lower_), np.asarray(lp.row_upper_)
    tight = []
    for row_name, rows in hm.row_of.items():
        if row_name not in _SINGLE_ROWS:
            continue
        for r in rows:
            scale = max(1.0, abs(upper[r]) if np.isfinite(upper[r]) else abs(lower[r]))
            at_bound = min(abs(values[r] - lower[r]), abs(values[r] - upper[r])) <= 1e-7 * scale
            if at_bound:
                tight.append(row_name)
    return list(dict.fromkeys(tight))
