"""Cluster mode: integer counts per cluster of alike customers, with a certified error.

1. Strata of customers that must stay apart for the rules to hold exactly after
   disaggregation: same allowed-offer signature (tier policy, segment rules and the
   per-customer satisfaction floor), tier, segment, and the same transformers/lines upstream.
2. Inside each stratum, k-means (Lloyd; scikit-learn) on the customers' load changes over the
   steps that can set the peak plus their money terms in kW-equivalents (EUR ÷ peak value).
3. The aggregated model: one row per cluster holding the members' means, ``x[c,k] ∈ {0..m_c}``
   members getting offer k (`ModelOptions.counts`), solved as a MIP by HiGHS.
4. Disaggregation: inside each cluster the ``x[c,k]`` slots go to the members by a linear
   assignment (Hungarian method, `scipy.optimize.linear_sum_assignment`) on their own
   dual-priced value (aggregated LP's row prices applied to each member's own Δ and money).
5. The assignment is evaluated per customer on every step; limits broken by the within-cluster
   spread are tightened and the aggregate re-solved (`CLUSTER_REPAIR_ROUNDS`).
6. The error is certified: the aggregated LP's prices give a Lagrangian upper bound on the
   per-customer optimum (`optimizer.lagrangian`), reported as ``bound`` and ``gap``.

Aggregation follows the strata-then-k-means recipe of SOLVER.md ("Aggregating alike customers").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from optimizer.assignment import assignment_load, evaluate_assignment, network_flows
from optimizer.handoff import HighsModel, gc_paused, run_with_deadline, to_highs
from optimizer.lagrangian import RowPrices, _network_prices, lagrangian_bound, row_prices
from optimizer.model import ModelOptions, build_model
from optimizer.pairs import customer_delta_range, eligible_pairs, select_peak_steps
from optimizer.problem import OfferProblem
from scenarios.errors import InfeasibleError, SolverError
from scenarios.schema import SolverConfig

#: Default number of clusters (SOLVER.md: 100–300 segments were 5–20× faster than per customer).
DEFAULT_CLUSTERS = 300
#: Steps used as clustering features (the ones that can set the peak, largest first).
FEATURE_STEPS = 16
#: Re-solves with tightened limits when disaggregation breaks one.
CLUSTER_REPAIR_ROUNDS = 4


@dataclass(frozen=True)
class Clustering:
    """Cluster of every customer and the aggregated problem (rows = clusters, means)."""

    label: np.ndarray        # [n] cluster index per customer
    counts: np.ndarray       # [c] members per cluster
    problem: OfferProblem    # aggregated problem, c rows


def _strata(problem: OfferProblem, ok: np.ndarray) -> np.ndarray:
    """Stratum id per customer: allowed-offer signature, tier, segment, network position."""
    n = problem.shape[0]
    parts = [np.packbits(ok, axis=1)]
    for attr in ("customer_tier", "customer_segment"):
        values = getattr(problem, attr)
        if values is not None:
            parts.append(np.unique(np.asarray(values), return_inverse=True)[1].reshape(n, 1))
    for attr in ("trafo_customer", "line_customer"):
        weights = getattr(problem, attr)
        if weights is not None:
            parts.append(_column_signature(weights).reshape(n, 1))
    if problem.trafo_delta_kw is not None:
        # Dense form: which transformers a customer's Δ reaches.
        reach = np.abs(problem.trafo_delta_kw).sum(axis=(1, 2)) > 0      # [n, r]
        parts.append(np.packbits(reach, axis=1))
    key = np.concatenate([p.astype(np.int64) for p in parts], axis=1)
    return np.unique(key, axis=0, return_inverse=True)[1].ravel()


def _column_signature(weights) -> np.ndarray:
    csc = sp.csc_array(weights)
    csc.sort_indices()
    ids: dict[tuple, int] = {}
    out = np.empty(csc.shape[1], dtype=np.int64)
    for i in range(csc.shape[1]):
        a, b = csc.indptr[i], csc.indptr[i + 1]
        out[i] = ids.setdefault(tuple(csc.indices[a:b].tolist()), len(ids))
    return out


def cluster_customers(problem: OfferProblem, clusters: int, *, seed: int = 0) -> Clustering:
    """Group alike customers (see the module docstring) into about ``clusters`` clusters."""
    from sklearn.cluster import KMeans

    n, k, t = problem.shape
    ok = eligible_pairs(problem)
    stratum = _strata(problem, ok)
    cmin, cmax = customer_delta_range(problem, ok)
    base = np.asarray(problem.base_kw, dtype=float)
    steps = select_peak_steps(base + cmin.sum(0), base + cmax.sum(0))
    steps = steps[np.argsort(-(base + cmax.sum(0))[steps])][:FEATURE_STEPS]
    value = max(problem.peak_value_eur_per_kw, 1e-9)
    money = np.stack(
        [problem.incentive_eur, problem.bad_debt_eur, problem.revenue_change_eur], axis=2
    ) / value
    features = np.concatenate(
        [
            problem.delta_kw[:, :, steps].reshape(n, -1),
            money.reshape(n, -1),
            problem.satisfaction * max(problem.satisfaction_value_eur, 1.0) / value,
        ],
        axis=1,
    )
    label = np.empty(n, dtype=np.int64)
    next_label = 0
    sizes = np.bincount(stratum)
    for s in np.flatnonzero(sizes):
        members = np.flatnonzero(stratum == s)
        want = int(min(members.size, max(1, round(clusters * members.size / n))))
        if want == 1:
            local = np.zeros(members.size, dtype=np.int64)
        else:
            fit = KMeans(n_clusters=want, n_init=1, max_iter=50, random_state=seed)
            local = fit.fit_predict(features[members])
            local = np.unique(local, return_inverse=True)[1]
        label[members] = next_label + local
        next_label += int(local.max()) + 1
    counts = np.bincount(label).astype(float)
    return Clustering(label=label, counts=counts, problem=_aggregate(problem, label, counts))


def _aggregate(problem: OfferProblem, label: np.ndarray, counts: np.ndarray) -> OfferProblem:
    n, k, t = problem.shape
    c = counts.size
    mean = sp.csr_array((1.0 / counts[label], (label, np.arange(n))), shape=(c, n))

    def avg(a):
        a = np.asarray(a, dtype=float)
        return (mean @ a.reshape(n, -1)).reshape((c,) + a.shape[1:])

    first = np.zeros(c, dtype=np.int64)
    first[label[::-1]] = np.arange(n)[::-1]
    fields: dict = {}
    for attr in ("trafo_customer", "line_customer", "voltage_sensitivity_pu_per_kw"):
        weights = getattr(problem, attr)
        if weights is not None:
            fields[attr] = sp.csr_array(sp.csr_array(weights) @ mean.T)
    if problem.trafo_delta_kw is not None:
        fields["trafo_delta_kw"] = avg(problem.trafo_delta_kw)
    for attr in ("customer_tier", "customer_segment"):
        if getattr(problem, attr) is not None:
            fields[attr] = np.asarray(getattr(problem, attr))[first]
    return replace(
        problem,
        customer_ids=np.arange(c, dtype=np.int64),
        delta_kw=avg(problem.delta_kw),
        acceptance=avg(problem.acceptance),
        incentive_eur=avg(problem.incentive_eur),
        bill_change_eur=avg(problem.bill_change_eur),
        revenue_change_eur=avg(problem.revenue_change_eur),
        bad_debt_eur=avg(problem.bad_debt_eur),
        satisfaction=avg(problem.satisfaction),
        # Members share the allowed-offer signature (strata), so any member's row will do.
        eligible=eligible_pairs(problem)[first],
        satisfaction_floor_customer=0.0,
        **fields,
    )


def _member_values(problem: OfferProblem, prices: RowPrices) -> np.ndarray:
    """Each customer's dual-priced value of each offer [n, k] (higher is better)."""
    n, k, t = problem.shape
    y_peak = np.zeros(t)
    for step, y in prices.peak.items():
        y_peak[step] = y
    value = (
        -problem.incentive_weight * problem.incentive_eur
        - problem.bad_debt_weight * problem.bad_debt_eur
        + problem.satisfaction_value_eur * problem.satisfaction / n
        + problem.delta_kw @ y_peak
    )
    scalar = {"budget": problem.incentive_eur, "satisfaction_mean": problem.satisfaction,
              "revenue_up": problem.revenue_change_eur, "revenue_down": problem.revenue_change_eur}
    for name, y in prices.scalar.items():
        if name in scalar:
            value = value + y * scalar[name]
    # Network rows bind at their own steps: price each member's Δ there too.
    network = _network_prices(problem, prices)
    for _family, weights, grid in network["incidence"]:
        value = value + np.einsum("ikt,it->ik", problem.delta_kw, np.asarray(weights.T @ grid))
    if network["dense"] is not None:
        value = value + np.einsum("iktr,tr->ik", problem.trafo_delta_kw, network["dense"])
    return value


def disaggregate(problem: OfferProblem, clustering: Clustering, counts_choice: np.ndarray,
                 member_value: np.ndarray) -> np.ndarray:
    """Give each cluster's offer slots to its members by maximum dual-priced value.

    ``counts_choice[c, k]``: members of cluster c to receive offer k (sums to the cluster size).
    """
    n = problem.shape[0]
    choice = np.zeros(n, dtype=np.int64)
    order = np.argsort(clustering.label, kind="stable")
    bounds = np.searchsorted(clustering.label[order], np.arange(clustering.counts.size + 1))
    for c in range(clustering.counts.size):
        members = order[bounds[c]:bounds[c + 1]]
        slots = np.repeat(np.arange(counts_choice.shape[1]), counts_choice[c])
        if np.unique(slots).size == 1:
            choice[members] = slots[0]
            continue
        rows, cols = linear_sum_assignment(-member_value[np.ix_(members, slots)])
        choice[members[rows]] = slots[cols]
    return choice


def _tighten(agg: OfferProblem, problem: OfferProblem, choice: np.ndarray, values) -> OfferProblem:
    """Aggregated problem with every limit the disaggregated ``choice`` broke tightened.

    Each limit moves by 1.05 × its overshoot (plus a hair), so a few rounds suffice.
    """
    margin = 1.05
    changes: dict = {}
    if values.incentive_eur > problem.budget_eur:
        changes["budget_eur"] = agg.budget_eur - (values.incentive_eur - problem.budget_eur) * margin - 1e-6
    if values.satisfaction_mean < problem.satisfaction_floor_mean:
        changes["satisfaction_floor_mean"] = agg.satisfaction_floor_mean + (
            problem.satisfaction_floor_mean - values.satisfaction_mean) * margin + 1e-9
    if abs(values.revenue_change_eur) > problem.revenue_band_eur:
        changes["revenue_band_eur"] = agg.revenue_band_eur - (
            abs(values.revenue_change_eur) - problem.revenue_band_eur) * margin - 1e-6
    change = assignment_load(problem, choice)
    for family, flows, lower, upper in network_flows(problem, choice, change):
        over_hi = np.clip(flows - upper[None, :], 0, None).max(axis=0)    # [e]
        over_lo = np.clip(lower[None, :] - flows, 0, None).max(axis=0)
        if family == "trafo" and over_hi.any():
            changes["trafo_limit_kw"] = np.asarray(agg.trafo_limit_kw) - over_hi * margin - 1e-6 * (over_hi > 0)
        elif family == "line" and (over_hi.any() or over_lo.any()):
            worst = np.maximum(over_hi, over_lo)
            changes["line_limit_kw"] = np.asarray(agg.line_limit_kw) - worst * margin - 1e-6 * (worst > 0)
        elif family == "voltage" and (over_hi.any() or over_lo.any()):
            changes["voltage_min_pu"] = agg.voltage_min_pu + over_lo.max() * margin
            changes["voltage_max_pu"] = agg.voltage_max_pu - over_hi.max() * margin
    return replace(agg, **changes)


def solve_clustered(
    problem: OfferProblem,
    config: SolverConfig,
    *,
    export: Callable[[HighsModel], None] | None = None,
    deadline: float,
    clusters: int = DEFAULT_CLUSTERS,
):
    """Cluster mode of `optimizer.solve.solve_offers` (returns an `OfferSolution`); ``export``
    receives the first clustered model handed to HiGHS (to write it to a file)."""
    from optimizer.highs_steps import make_solution, solve_relaxation

    start = time.perf_counter()
    with gc_paused():
        clustering = cluster_customers(problem, clusters)
        agg = clustering.problem
        build_s = handoff_s = 0.0
        best = None
        for _ in range(CLUSTER_REPAIR_ROUNDS):
            t0 = time.perf_counter()
            model = build_model(agg, ModelOptions(counts=clustering.counts))
            t1 = time.perf_counter()
            hm = to_highs(model, threads=config.threads)
            t2 = time.perf_counter()
            build_s += t1 - t0 + (t0 - start if best is None else 0.0)
            handoff_s += t2 - t1
            if export is not None and best is None:
                export(hm)
            lp_status, _, _, _ = solve_relaxation(hm, deadline)
            if lp_status == "infeasible":
                from optimizer.infeasibility import explain_infeasibility

                raise InfeasibleError(explain_infeasibility(problem, config))
            if lp_status != "optimal":
                raise SolverError(f"cluster LP relaxation: {lp_status}")
            prices = row_prices(hm)
            bound = lagrangian_bound(problem, prices)
            hm.highs.setOptionValue("mip_rel_gap", config.mip_gap)
            run_with_deadline(hm.highs, deadline)
            if hm.highs.getInfo().primal_solution_status != 2:
                raise SolverError("cluster MIP found no assignment within the time limit")
            x = np.rint(np.asarray(hm.highs.getSolution().col_value)[hm.x_col])
            pairs = model.pair_data
            counts_choice = np.zeros((agg.shape[0], agg.shape[1]), dtype=np.int64)
            counts_choice[pairs.customer, pairs.offer] = x.astype(np.int64)
            choice = disaggregate(problem, clustering, counts_choice, _member_values(problem, prices))
            values = evaluate_assignment(problem, choice)
            best = choice
            if not values.violations:
                break
            # The within-cluster spread broke a limit: tighten it by the overshoot, re-solve.
            agg = _tighten(agg, problem, choice, values)
        else:
            raise SolverError(
                "cluster mode: disaggregated assignment still breaks "
                + "; ".join(evaluate_assignment(problem, best).violations)
            )
        solved = time.perf_counter()
        note = (
            f"{clustering.counts.size} clusters; error vs per-customer optimum ≤ gap "
            "(Lagrangian bound from the clustered LP prices)"
        )
        return make_solution(
            problem, best, bound, "clustered", "cluster",
            build_s=build_s, handoff_s=handoff_s, solve_s=solved - start - build_s - handoff_s,
            hm=hm, peak_rows=len(model.S), fractional=0, note=note,
        )
