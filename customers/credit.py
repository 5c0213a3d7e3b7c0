"""Credit grade, arrears early warning and risk decisions from payment histories.

Three models, each standard practice in retail credit scoring (Siddiqi, *Credit Risk Scorecards*,
Wiley 2006; Thomas, Edelman & Crook, *Credit Scoring and its Applications*, SIAM 2002):

1. **Scorecard** (`fit_scorecard`): payment features over a trailing 12-month window are binned
   (quantile bins, adjacent bins merged until the bad rate is monotone), encoded by weight of
   evidence ``WoE_b = ln(%good_b / %bad_b)``, and a logistic regression on the WoE columns gives
   the log-odds; features whose coefficient comes out with the wrong sign are dropped. Points
   are scaled by *points to double the odds*: ``score = offset + factor·ln(odds_good)``,
   ``factor = PDO / ln 2``, ``offset = BASE_SCORE − factor·ln(BASE_ODDS)``. "Bad" is serious
   arrears (balance above one mean bill) within the next 6 months.
2. **Early warning** (`fit_early_warning`): scikit-learn logistic regression on standardized raw
   features for *any arrears in the next 3 months*, trained on a panel of monthly observation
   points; discrimination (AUC, KS) and calibration (Brier score, expected calibration error) are
   measured on a time-based hold-out (the latest observation points, after the training labels'
   outcome windows end). Per customer, the top reasons are the features with the largest positive
   contribution ``coef_j · z_j`` to the log-odds.
3. **Tiers and policy**: score → tier A–D by ``credit.tier_min_scores``; the tier's policy
   (eligible offers, incentive cap, deposit, pay-for-performance, prepayment) is applied by
   `optimizer.offers`.

When the population is small the models are fitted on a *reference book*: the population's own
histories plus synthetic customers drawn like them (a utility fits its scorecard on its whole
customer base, not on one feeder).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from customers.payment_history import (
    ARREARS_SHARE_OF_BILL,
    estimate_monthly_bill,
    synthesize_payment_history,
)
from scenarios.errors import InputError
from scenarios.schema import TIERS, Scenario
from sim.dataset import validate

FEATURES: tuple[str, ...] = (
    "on_time_ratio",
    "max_days_late",
    "mean_days_late",
    "arrears_months",
    "arrears_to_bill",
    "notices",
    "partial_payments",
    "late_recent",
)
#: Trailing window the features are computed over [months].
FEATURE_MONTHS = 12
#: Outcome windows: scorecard "bad" and early-warning target [months].
SCORECARD_OUTCOME_MONTHS = 6
WARNING_OUTCOME_MONTHS = 3
#: Score scaling: BASE_SCORE points at good:bad odds BASE_ODDS, PDO points double the odds.
BASE_SCORE = 600.0
BASE_ODDS = 10.0
PDO = 40.0
#: Smallest book the models are fitted on; smaller populations get synthetic look-alikes.
REFERENCE_BOOK_SIZE = 4_000
MAX_BINS = 5
#: Largest number of panel rows (customer-months) a model is fitted on; bigger books are
#: subsampled (the fit is stable long before, and the hold-out is always scored in full).
MAX_FIT_ROWS = 200_000
#: Share of the bills of the arrears window that ends up written off [-], and that window
#: [months] (risk decisions: expected bad debt = P(arrears) × loss share × bills at risk).
LOSS_GIVEN_ARREARS = 0.3
ARREARS_WINDOW_MONTHS = 3.0


def payment_features(history: xr.Dataset, end: int) -> np.ndarray:
    """Features over months ``[end − 12, end)`` of a payment history → ``[customer, feature]``.

    ``on_time_ratio`` (share of months paid in full on time), ``max_days_late`` and
    ``mean_days_late`` [d], ``arrears_months``, ``notices`` and ``partial_payments`` (per 12
    months), ``arrears_to_bill`` (unpaid balance at the observation point / mean bill) and
    ``late_recent`` (late months among the last 3).

    Parameters
    ----------
    history
        Payment history (see `customers.payment_history`).
    end
        Index of the first month *after* the window (the observation point).
    """
    start = max(0, end - FEATURE_MONTHS)
    # Counts are per 12 months so that short early windows compare with full ones.
    per_year = 12.0 / (end - start)
    bill = history["bill_eur"].values[:, start:end]
    paid = history["paid_eur"].values[:, start:end]
    days = history["days_late"].values[:, start:end]
    arrears = history["in_arrears"].values[:, start:end]
    notice = history["disconnection_notice"].values[:, start:end]
    balance = history["balance_eur"].values[:, end - 1]
    mean_bill = np.maximum(history["bill_eur"].values[:, :end].mean(axis=1), 1e-6)
    on_time = (days <= 0) & (paid >= bill * 0.999)
    return np.column_stack([
        on_time.mean(axis=1),
        days.max(axis=1),
        days.mean(axis=1),
        arrears.sum(axis=1) * per_year,
        balance / mean_bill,
        notice.sum(axis=1) * per_year,
        (paid < 0.95 * bill).sum(axis=1) * per_year,
        (days[:, -3:] > 0).sum(axis=1),
    ]).astype(np.float64)


def _outcome(history: xr.Dataset, start: int, months: int, threshold_bills: float) -> np.ndarray:
    balance = history["balance_eur"].values[:, start:start + months]
    mean_bill = np.maximum(history["bill_eur"].values.mean(axis=1), 1e-6)
    return (balance > threshold_bills * mean_bill[:, None]).any(axis=1)


def _fit_rows(mask: np.ndarray) -> np.ndarray:
    """Positions of at most `MAX_FIT_ROWS` rows of ``mask``, an even deterministic stride."""
    rows = np.flatnonzero(mask)
    if len(rows) <= MAX_FIT_ROWS:
        return rows
    return rows[np.linspace(0, len(rows) - 1, MAX_FIT_ROWS).astype(np.int64)]


def panel(history: xr.Dataset, outcome_months: int, threshold_bills: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack (features, label, observation month index) over every usable observation point."""
    n_months = history.sizes["month"]
    # Observation points start once 12 months of features exist, earlier for short histories
    # (keeping ≥ 6 points for the time-based hold-out).
    first = min(FEATURE_MONTHS, max(3, n_months - outcome_months - 6))
    xs, ys, ms = [], [], []
    for end in range(first, n_months - outcome_months + 1):
        xs.append(payment_features(history, end))
        ys.append(_outcome(history, end, outcome_months, threshold_bills))
        ms.append(np.full(history.sizes["customer"], end))
    if not xs:
        source = history.attrs.get("file")
        raise InputError(
            (f"{source}: " if source else "")
            + f"payment history of {n_months} months is too short: need at least "
            f"{3 + outcome_months}"
        )
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ms)


# ----------------------------------------------------------------------------- scorecard
@dataclass(frozen=True)
class Scorecard:
    """Binned points table: ``edges[j]`` upper bin edges of feature ``j``, ``points[j]`` per bin."""

    features: tuple[str, ...]
    edges: tuple[np.ndarray, ...]
    woe: tuple[np.ndarray, ...]
    bad_rate: tuple[np.ndarray, ...]
    points: tuple[np.ndarray, ...]
    coef: np.ndarray
    intercept: float
    constant: float = 0.0
    fallback: str = ""  # why the card has no features ("" when fitted)

    def bin_index(self, j: int, x: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges[j], x, side="left").clip(0, len(self.edges[j]))

    def score(self, X: np.ndarray) -> np.ndarray:
        """Total points per row of the full feature matrix ``X[:, FEATURES]``."""
        total = np.full(len(X), self.constant)
        for j, name in enumerate(self.features):
            total += self.points[j][self.bin_index(j, X[:, FEATURES.index(name)])]
        return total


def _monotone_bins(x: np.ndarray, y: np.ndarray, max_bins: int = MAX_BINS) -> np.ndarray:
    """Upper edges of quantile bins merged until the bad rate is monotone in the feature."""
    edges = np.unique(np.quantile(x, np.linspace(0, 1, max_bins + 1)[1:-1]))
    while True:
        idx = np.searchsorted(edges, x, side="left")
        counts = np.bincount(idx, minlength=len(edges) + 1)
        bads = np.bincount(idx, weights=y, minlength=len(edges) + 1)
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            # An empty bin merges into its neighbour: drop the edge that bounds it.
            edges = np.delete(edges, min(int(empty[0]), len(edges) - 1))
            continue
        rate = (bads + 0.5) / (counts + 1.0)
        if len(rate) <= 1:
            return edges
        direction = np.sign(np.corrcoef(x, y)[0, 1]) if np.std(x) > 0 and np.std(y) > 0 else 1.0
        steps = np.diff(rate) * (direction or 1.0)
        bad = np.flatnonzero(steps <= 0)
        if len(bad) == 0:
            return edges
        edges = np.delete(edges, bad[0])


def fit_scorecard(X: np.ndarray, bad: np.ndarray, max_bins: int = MAX_BINS,
                  names: tuple[str, ...] = FEATURES) -> Scorecard:
    """Fit the WoE logistic scorecard on feature rows ``X[:, names]`` and bad flags."""
    from sklearn.linear_model import LogisticRegression

    y = bad.astype(np.float64)
    n_bad, n_good = y.sum() + 0.5, (1 - y).sum() + 0.5
    edges, woes, rates, columns = [], [], [], []
    for j in range(X.shape[1]):
        e = _monotone_bins(X[:, j], y, max_bins)
        idx = np.searchsorted(e, X[:, j], side="left")
        counts = np.bincount(idx, minlength=len(e) + 1)
        bads = np.bincount(idx, weights=y, minlength=len(e) + 1)
        goods = counts - bads
        woe = np.log(((goods + 0.5) / n_good) / ((bads + 0.5) / n_bad))
        edges.append(e)
        woes.append(woe)
        rates.append((bads + 0.5) / (counts + 1.0))
        columns.append(woe[idx])
    W = np.column_stack(columns)
    active = [j for j in range(W.shape[1]) if len(edges[j]) > 0]
    # A logit needs both classes and a feature that varies (a book where nobody was ever
    # late, or where every bill is zero, has neither).
    if y.max() == 0:
        return _base_rate_scorecard(y, "no customer of the book reached serious arrears")
    if y.min() == 1:
        return _base_rate_scorecard(y, "every customer of the book reached serious arrears")
    if not active:
        return _base_rate_scorecard(y, "no payment feature varies across the book")
    while True:
        model = LogisticRegression(C=1.0, max_iter=1000)
        model.fit(W[:, active], y)
        coef = model.coef_[0]
        # WoE grows with goodness, so a sane coefficient on P(bad) is negative.
        wrong = [j for j, c in zip(active, coef, strict=True) if c >= 0]
        if not wrong or len(active) == 1:
            break
        active = [j for j in active if j not in wrong]
    factor = PDO / np.log(2.0)
    offset = BASE_SCORE - factor * np.log(BASE_ODDS)
    intercept = float(model.intercept_[0])
    p = len(active)
    points = []
    for k, j in enumerate(active):
        # ln(odds_good) = −(b0 + Σ b_j·WoE_j), shared out over the features' bins.
        points.append(-(coef[k] * woes[j] + intercept / p) * factor + offset / p)
    return Scorecard(
        features=tuple(names[j] for j in active),
        edges=tuple(edges[j] for j in active),
        woe=tuple(woes[j] for j in active),
        bad_rate=tuple(rates[j] for j in active),
        points=tuple(points),
        coef=np.asarray(coef),
        intercept=intercept,
    )


def _base_rate_scorecard(bad: np.ndarray, why: str) -> Scorecard:
    """Fallback card when a logit cannot be fitted: every row gets the points of the book's
    Laplace-smoothed good:bad odds, ``offset + factor·ln((goods + ½)/(bads + ½))``, so every
    customer lands in one tier (documented; reported by `assess_credit`)."""
    goods, bads = float((1 - bad).sum()), float(bad.sum())
    factor = PDO / np.log(2.0)
    offset = BASE_SCORE - factor * np.log(BASE_ODDS)
    points = offset + factor * np.log((goods + 0.5) / (bads + 0.5))
    rate = (bads + 0.5) / (goods + bads + 1.0)
    return Scorecard(features=(), edges=(), woe=(), bad_rate=(), points=(), coef=np.zeros(0),
                     intercept=float(np.log(rate / (1.0 - rate))), constant=float(points),
                     fallback=f"{why} ({bads:.0f} of {goods + bads:.0f} observations bad)")


def assign_tiers(score: np.ndarray, tier_min_scores: tuple[float, float, float]) -> np.ndarray:
    """Tier letter per score: A ≥ first threshold > B ≥ second > C ≥ third > D."""
    thresholds = np.asarray(tier_min_scores, dtype=np.float64)
    index = (score[:, None] < thresholds[None, :]).sum(axis=1)
    return np.asarray(TIERS, dtype="<U1")[index]


# ----------------------------------------------------------------------------- early warning
@dataclass(frozen=True)
class EarlyWarning:
    """Fitted arrears model and its hold-out diagnostics."""

    model: object
    auc: float
    ks: float
    brier: float
    calibration_error: float
    holdout_rows: int
    holdout_rate: float

    def probability(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(_ew_inputs(X))[:, 1]  # type: ignore[attr-defined]

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature contribution to the log-odds, ``coef_j · (x_j − mean_j)/sd_j``."""
        if isinstance(self.model, _BaseRate):
            return np.zeros(X.shape)
        scaler, logit = self.model.named_steps.values()  # type: ignore[attr-defined]
        return scaler.transform(_ew_inputs(X)) * logit.coef_[0][None, :]


def _ew_inputs(X: np.ndarray) -> np.ndarray:
    # Counts and amounts are skewed: log1p keeps the logistic model well conditioned.
    Z = X.copy()
    skewed = [FEATURES.index(f) for f in ("max_days_late", "mean_days_late", "arrears_to_bill")]
    Z[:, skewed] = np.log1p(np.maximum(Z[:, skewed], 0.0))
    return Z


def holdout_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, KS (max TPR − FPR), Brier score and expected calibration error (10 quantile bins)."""
    from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

    if y.min() == y.max():
        return {"auc": float("nan"), "ks": float("nan"),
                "brier": float(np.mean((p - y) ** 2)), "calibration_error": float("nan")}
    fpr, tpr, _ = roc_curve(y, p)
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, 10)
    ece = sum(len(b) * abs(p[b].mean() - y[b].mean()) for b in bins if len(b)) / len(p)
    return {"auc": float(roc_auc_score(y, p)), "ks": float(np.max(tpr - fpr)),
            "brier": float(brier_score_loss(y, p)), "calibration_error": float(ece)}


def fit_early_warning(history: xr.Dataset) -> EarlyWarning:
    """Fit the 3-month arrears model; measure it on the latest observation points first."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, month = panel(history, WARNING_OUTCOME_MONTHS, ARREARS_SHARE_OF_BILL)
    last = int(month.max())
    # Hold out the last 3 observation points; train only on points whose outcome window ends
    # before the first hold-out point, so no training label peeks into the hold-out period.
    test = month > last - 3
    train = month + WARNING_OUTCOME_MONTHS <= last - 2
    if train.sum() == 0 or y[train].min() == y[train].max():
        train = ~test
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    metrics = {"auc": float("nan"), "ks": float("nan"), "brier": float("nan"),
               "calibration_error": float("nan")}
    if y[train].min() != y[train].max():
        rows = _fit_rows(train)
        model.fit(_ew_inputs(X[rows]), y[rows])
        metrics = holdout_metrics(y[test].astype(float),
                                  model.predict_proba(_ew_inputs(X[test]))[:, 1])
    if y.min() == y.max():
        # A book without arrears (or only arrears) cannot fit a logit: use the Laplace-smoothed
        # base rate for everyone.
        final: object = _BaseRate((y.sum() + 0.5) / (len(y) + 1.0))
    else:
        final = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
        rows = _fit_rows(np.ones(len(y), dtype=bool))
        final.fit(_ew_inputs(X[rows]), y[rows])  # type: ignore[attr-defined]
    return EarlyWarning(model=final, holdout_rows=int(test.sum()),
                        holdout_rate=float(y[test].mean()), **metrics)


@dataclass(frozen=True)
class _BaseRate:
    """Constant arrears probability (degenerate books)."""

    rate: float

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([np.full(len(X), 1.0 - self.rate), np.full(len(X), self.rate)])


# ----------------------------------------------------------------------------- assessment
def reference_book(population: xr.Dataset, scenario: Scenario, bill: np.ndarray,
                   history: xr.Dataset) -> xr.Dataset:
    """The population's histories plus synthetic look-alikes up to `REFERENCE_BOOK_SIZE`."""
    extra = REFERENCE_BOOK_SIZE - population.sizes["customer"]
    if extra <= 0 or history.attrs.get("source") != "synthetic":
        return history
    from customers.population import stream_rng

    # Picks by position in id order, so the book does not depend on the population's order.
    by_id = np.argsort(population["customer"].values, kind="stable")
    pick = by_id[stream_rng(scenario.seed, "reference_book").integers(0, len(by_id), extra)]
    ids = population["customer"].values.max() + 1 + np.arange(extra)
    clones = population.isel(customer=pick).assign_coords(customer=ids)
    synthetic = synthesize_payment_history(clones, scenario, monthly_bill_eur=bill[pick],
                                           months=history.sizes["month"])
    return xr.concat([history, synthetic], dim="customer", data_vars="all")


def assess_credit(
    population: xr.Dataset,
    scenario: Scenario,
    *,
    monthly_bill_eur: np.ndarray | None = None,
    history: xr.Dataset | None = None,
) -> xr.Dataset:
    """Score every customer: credit score, tier, 3-month arrears probability and warning.

    Parameters
    ----------
    population
        Customers (see `customers.population`).
    scenario
        ``credit`` settings, ``seed``, tariffs.
    monthly_bill_eur
        Mean monthly bill per customer [EUR], e.g. from the simulated load × tariff; default
        `customers.payment_history.estimate_monthly_bill`.
    history
        Payment history (e.g. `read_payment_history_csv`); default synthesized.

    Returns
    -------
    xr.Dataset
        ``population`` plus ``credit_score`` [points], ``tier`` (``<U1``), ``arrears_probability``
        [-], ``warning`` (bool), ``warning_reason_1..3`` (``<U20``), ``monthly_bill_eur`` [EUR],
        history aggregates (``arrears_months_12m``, ``notices_12m``) and the model diagnostics
        as attrs (``credit_auc``, ``credit_ks``, ``credit_brier``, ``credit_calibration_error``).
    """
    bill = (estimate_monthly_bill(population, scenario) if monthly_bill_eur is None
            else np.asarray(monthly_bill_eur, dtype=np.float64))
    if history is None:
        history = synthesize_payment_history(population, scenario, monthly_bill_eur=bill)
    book = reference_book(population, scenario, bill, history).sortby("customer")
    now = payment_features(history, history.sizes["month"])
    if scenario.credit.scorecard is not None:
        # A card fitted on the utility's whole book (customers/credit_book.py).
        from customers.credit_book import load_scorecard

        path = scenario.credit.scorecard
        book_card = load_scorecard(path if path.is_absolute() else scenario.base_dir / path)
        card, score = book_card.card, book_card.score(history)
    else:
        Xs, bad, _ = panel(book, SCORECARD_OUTCOME_MONTHS, 1.0)
        rows = _fit_rows(np.ones(len(bad), dtype=bool))
        card = fit_scorecard(Xs[rows], bad[rows])
        score = card.score(now)
    warning_model = fit_early_warning(book)
    tier = assign_tiers(score, scenario.credit.tier_min_scores)
    probability = warning_model.probability(now)
    contributions = warning_model.contributions(now)
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :3]
    names = np.asarray(FEATURES, dtype="<U20")

    out = population.copy()
    out["monthly_bill_eur"] = ("customer", bill, {"units": "EUR", "long_name": "mean monthly bill"})
    out["credit_score"] = ("customer", score, {"units": "1", "long_name": "scorecard points"})
    out["tier"] = ("customer", tier, {"units": "1", "long_name": "credit tier"})
    out["arrears_probability"] = ("customer", probability,
                                  {"units": "1", "long_name": "probability of arrears in 3 months"})
    warn = probability >= scenario.credit.warning_threshold
    out["warning"] = ("customer", warn, {"units": "bool", "long_name": "arrears early warning"})
    for k in range(3):
        reason = np.where(warn & (np.take_along_axis(contributions, order[:, k:k + 1], 1)[:, 0] > 0),
                          names[order[:, k]], "")
        out[f"warning_reason_{k + 1}"] = ("customer", reason.astype("<U20"),
                                          {"units": "1", "long_name": f"warning reason {k + 1}"})
    out["arrears_months_12m"] = ("customer", now[:, FEATURES.index("arrears_months")],
                                 {"units": "1", "long_name": "months in arrears, last 12"})
    out["notices_12m"] = ("customer", now[:, FEATURES.index("notices")],
                          {"units": "1", "long_name": "disconnection notices, last 12 months"})
    out.attrs.update({
        "credit_auc": warning_model.auc, "credit_ks": warning_model.ks,
        "credit_brier": warning_model.brier,
        "credit_calibration_error": warning_model.calibration_error,
        "credit_holdout_rows": warning_model.holdout_rows,
        "credit_book_size": int(book.sizes["customer"]),
        "credit_scorecard_features": ",".join(card.features),
    })
    if card.fallback:
        out.attrs["credit_note"] = (
            f"credit scorecard not fitted: {card.fallback}; every customer scores "
            f"{card.constant:.0f} points (the book's arrears rate), tier {tier[0]}"
        )
    return validate(out, stage="credit")
