"""A utility-wide credit book: fit the scorecard on the whole book, validate it out of time.

`gridflex credit fit HISTORY -o scorecard.json` reads the payment history of every customer
of the utility (CSV ``customer_id, month, bill_eur, paid_eur, days_late
[, disconnection_notice]``, IDs as text, one row per customer and month, every customer over
the same consecutive months, none in the future), and

- builds the observation panel of `customers.credit` (features over the trailing 12 months,
  "bad" = serious arrears in the next 6 months);
- holds out the latest observation point (out-of-time validation, Siddiqi 2006 ch. 8; Thomas,
  Edelman & Crook 2002 §7): the scorecard is fitted on the observation points whose 6-month
  outcome window has ended before it (when the history is too short for that, on every earlier
  point, and the report says by how many months the outcome windows overlap);
- measures on the hold-out: AUC with a bootstrap 95 % interval (Efron & Tibshirani 1993, 200
  resamples of hold-out customers), KS, Gini = 2·AUC − 1, a calibration table (predicted vs
  observed bad rate per score decile) and the score resolution (distinct scores and the
  largest share of customers sharing one score);
- refuses a book too small to validate (fewer than `MIN_CUSTOMERS` customers or
  `MIN_ARREARS` customers ever in arrears), with the numbers.

Scores: the WoE points scorecard of `customers.credit` with up to `BOOK_BINS` monotone bins
per feature (a large book supports finer bins than one feeder), so that scores rank finely.
`[credit] scorecard = "scorecard.json"` applies the stored card to a run's customers.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from customers import credit
from customers.io import read_text_csv
from customers.payment_history import ARREARS_SHARE_OF_BILL, NOTICE_BILLS, history_dataset
from scenarios.errors import InputError

#: Features of the book scorecard: those of `customers.credit` plus three that a whole book's
#: history supports and that rank customers who paid on time in the last 12 months:
#: ``bill_burden`` (ln of the customer's mean bill over the book's median: a large bill is a
#: burden), ``late_months_24`` (late months in the last 24) and ``months_since_late``
#: (capped at the history length).
BOOK_FEATURES: tuple[str, ...] = (*credit.FEATURES, "bill_burden", "late_months_24",
                                  "months_since_late")
MIN_CUSTOMERS = 200
MIN_ARREARS = 20
BOOK_BINS = 12
BOOTSTRAP = 200
FORMAT = "gridflex-scorecard/1"


@dataclass(frozen=True)
class BookCard:
    """A points scorecard over `BOOK_FEATURES` and the book's median bill it was fitted with."""

    card: credit.Scorecard
    median_bill_eur: float

    def score(self, history: xr.Dataset, end: int | None = None) -> np.ndarray:
        """Points of every customer of ``history`` at observation point ``end`` (default: now)."""
        X = book_features(history, history.sizes["month"] if end is None else end,
                          self.median_bill_eur)
        return score_rows(self.card, X)


@dataclass(frozen=True)
class BookFit:
    """The fitted card and its out-of-time validation."""

    card: BookCard
    metrics: dict[str, float | int | str]
    calibration: pd.DataFrame


def book_features(history: xr.Dataset, end: int, median_bill_eur: float) -> np.ndarray:
    """`BOOK_FEATURES` over the history before month index ``end`` → ``[customer, feature]``."""
    base = credit.payment_features(history, end)
    bill = history["bill_eur"].values[:, :end]
    late = history["days_late"].values[:, :end] > 0
    burden = np.log(np.maximum(bill.mean(axis=1), 1e-3) / max(median_bill_eur, 1e-3))
    late_24 = late[:, -24:].sum(axis=1)
    any_late = late.any(axis=1)
    since = np.where(any_late, np.argmax(late[:, ::-1], axis=1), end)
    return np.column_stack([base, burden, late_24, since]).astype(np.float64)


def score_rows(card: credit.Scorecard, X: np.ndarray) -> np.ndarray:
    """Total points of rows ``X[:, BOOK_FEATURES]``."""
    total = np.zeros(len(X))
    for j, name in enumerate(card.features):
        total += card.points[j][card.bin_index(j, X[:, BOOK_FEATURES.index(name)])]
    return total


def book_panel(history: xr.Dataset, median_bill_eur: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`credit.panel` over `BOOK_FEATURES`: (features, bad, observation month index)."""
    _, bad, end = credit.panel(history, credit.SCORECARD_OUTCOME_MONTHS, 1.0)
    X = np.vstack([book_features(history, int(e), median_bill_eur) for e in np.unique(end)])
    return X, bad, end


def read_book_csv(path: Path | str, *, today: dt.date | None = None) -> xr.Dataset:
    """Read a whole book's payment history (see the module docstring) [EUR, d].

    Raises `InputError` naming the file, line and column of the first bad value (including a
    month after ``today``'s month) or the numbers when the table is not rectangular.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: payment history file not found")
    frame = read_text_csv(path)
    for column in ("customer_id", "month", "bill_eur", "paid_eur", "days_late"):
        if column not in frame.columns:
            raise InputError(f"{path}, column '{column}': required column is missing")
    if frame.empty:
        raise InputError(f"{path}: no rows")
    ids = frame["customer_id"].str.strip()
    if (ids == "").any():
        raise InputError(f"{path}, line {int(np.flatnonzero(ids == '')[0]) + 2}, column "
                         "'customer_id': is missing")
    numbers = {}
    for column in ("bill_eur", "paid_eur", "days_late"):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
        if len(bad):
            i = int(bad[0])
            raise InputError(f"{path}, line {i + 2}, column '{column}': "
                             f"'{frame[column].iloc[i]}' is not a non-negative number")
        numbers[column] = values
    parts = frame["month"].str.strip().str.extract(r"^(\d{4})-(\d{2})$").astype(float)
    year, month_no = parts[0].to_numpy(), parts[1].to_numpy()
    unreadable = np.isnan(year) | ~((month_no >= 1) & (month_no <= 12))
    if unreadable.any():
        i = int(np.flatnonzero(unreadable)[0])
        raise InputError(f"{path}, line {i + 2}, column 'month': '{frame['month'].iloc[i]}' is "
                         "not YYYY-MM")
    today = today or dt.date.today()
    future = year * 12 + month_no > today.year * 12 + today.month
    if future.any():
        i = int(np.flatnonzero(future)[0])
        raise InputError(f"{path}, line {i + 2}, column 'month': {frame['month'].iloc[i]} is in "
                         f"the future (today is {today.isoformat()})")
    month = pd.to_datetime(frame["month"].str.strip(), format="%Y-%m", errors="coerce")
    if month.isna().any():  # before pandas' first representable month
        i = int(np.flatnonzero(month.isna().to_numpy())[0])
        raise InputError(f"{path}, line {i + 2}, column 'month': '{frame['month'].iloc[i]}' is "
                         "out of range")
    keyed = pd.DataFrame({"id": ids, "month": month})
    dup = keyed.duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InputError(f"{path}, line {i + 2}, column 'month': duplicate month for customer "
                         f"'{ids.iloc[i]}'")
    months = np.sort(month.unique())
    expected = pd.period_range(pd.Timestamp(months[0]), pd.Timestamp(months[-1]), freq="M")
    if len(expected) != len(months):
        raise InputError(f"{path}, column 'month': months are not consecutive")
    names = np.sort(ids.unique())
    if len(frame) != len(names) * len(months):
        raise InputError(f"{path}: expected {len(names) * len(months)} rows ({len(names)} "
                         f"customers × {len(months)} months), found {len(frame)}")
    row = np.searchsorted(names, ids.to_numpy())
    col = np.searchsorted(months, month.to_numpy())
    shape = (len(names), len(months))

    def matrix(values: np.ndarray) -> np.ndarray:
        out = np.empty(shape)
        out[row, col] = values
        return out

    bill, paid, days = (matrix(numbers[c]) for c in ("bill_eur", "paid_eur", "days_late"))
    balance = np.cumsum(bill - paid, axis=1).clip(min=0.0)
    mean_bill = np.maximum(bill.mean(axis=1, keepdims=True), 1e-6)
    if "disconnection_notice" in frame.columns:
        flag = frame["disconnection_notice"].str.strip().str.lower().isin({"true", "1", "yes"})
        notice = matrix(flag.to_numpy(np.float64)).astype(bool)
    else:
        notice = balance > NOTICE_BILLS * mean_bill
    arrays = {"bill_eur": bill, "paid_eur": paid, "balance_eur": balance, "days_late": days,
              "in_arrears": balance > ARREARS_SHARE_OF_BILL * mean_bill,
              "disconnection_notice": notice}
    ds = history_dataset(np.arange(len(names)), np.asarray(months, "datetime64[ns]"), arrays,
                         attrs={"source": "file", "file": str(path)})
    ds["customer_id"] = ("customer", names.astype(str), {"units": "1"})
    return ds


def fit_book(history: xr.Dataset, *, name: str = "book", seed: int = 0) -> BookFit:
    """Fit the scorecard on the book and validate it on the latest observation point.

    Raises `InputError` (one line, with the numbers) for a book too small to validate.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    outcome = credit.SCORECARD_OUTCOME_MONTHS
    median_bill = float(np.median(history["bill_eur"].values.mean(axis=1)))
    X, bad, end = book_panel(history, median_bill)
    n = history.sizes["customer"]
    ever_bad = int(bad.reshape(-1, n).any(axis=0).sum())
    if n < MIN_CUSTOMERS or ever_bad < MIN_ARREARS:
        raise InputError(
            f"{name}: a book of {n} customers with {ever_bad} in serious arrears is too small to "
            f"fit and validate a scorecard (need at least {MIN_CUSTOMERS} customers and "
            f"{MIN_ARREARS} in arrears)")
    last = int(end.max())
    holdout = end == last
    strict = end + outcome <= last
    train = strict if strict.any() else end < last
    overlap = 0 if strict.any() else int(end[train].max() + outcome - last)
    if int(bad[train].sum()) < MIN_ARREARS or int(bad[holdout].sum()) < MIN_ARREARS // 2:
        raise InputError(
            f"{name}: {int(bad[train].sum())} bad outcomes to fit on and {int(bad[holdout].sum())} "
            f"in the hold-out month are too few to fit and validate a scorecard (need at least "
            f"{MIN_ARREARS} and {MIN_ARREARS // 2}; give a longer or larger history)")
    rows = credit._fit_rows(train)
    card = BookCard(credit.fit_scorecard(X[rows], bad[rows], max_bins=BOOK_BINS,
                                         names=BOOK_FEATURES), median_bill)
    score = score_rows(card.card, X[holdout])
    y = bad[holdout].astype(int)
    auc = float(roc_auc_score(y, -score))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(y), len(y))
        if 0 < y[pick].sum() < len(pick):
            boots.append(roc_auc_score(y[pick], -score[pick]))
    fpr, tpr, _ = roc_curve(y, -score)
    _, counts = np.unique(score, return_counts=True)
    metrics: dict[str, float | int | str] = {
        "customers": n, "months": int(history.sizes["month"]),
        "customers_in_arrears": ever_bad,
        "train_rows": int(train.sum()), "train_bad": int(bad[train].sum()),
        "holdout_month": str(pd.Timestamp(history["month"].values[last - 1]).strftime("%Y-%m")),
        "holdout_rows": int(holdout.sum()), "holdout_bad": int(y.sum()),
        "outcome_overlap_months": overlap,
        "auc": auc, "auc_low": float(np.quantile(boots, 0.025)),
        "auc_high": float(np.quantile(boots, 0.975)),
        "ks": float(np.max(tpr - fpr)), "gini": 2.0 * auc - 1.0,
        "distinct_scores": int(len(counts)),
        "largest_tie_share": float(counts.max() / len(score)),
    }
    return BookFit(card=card, metrics=metrics, calibration=_calibration(score, y))


def predicted_bad_rate(score: np.ndarray) -> np.ndarray:
    """P(bad) implied by the points scaling: ``ln(odds_good) = (score − offset) / factor``."""
    factor = credit.PDO / np.log(2.0)
    offset = credit.BASE_SCORE - factor * np.log(credit.BASE_ODDS)
    return 1.0 / (1.0 + np.exp((np.asarray(score) - offset) / factor))


def _calibration(score: np.ndarray, y: np.ndarray, bands: int = 10) -> pd.DataFrame:
    """Predicted vs observed bad rate per score decile of the hold-out."""
    order = np.argsort(score, kind="stable")
    rows = []
    for k, part in enumerate(np.array_split(order, bands)):
        if len(part) == 0:
            continue
        rows.append({"band": k + 1, "rows": len(part), "score_min": float(score[part].min()),
                     "score_max": float(score[part].max()),
                     "predicted_bad_rate": float(predicted_bad_rate(score[part]).mean()),
                     "observed_bad_rate": float(y[part].mean())})
    return pd.DataFrame(rows)


def scorecard_json(fit: BookFit, source: str) -> str:
    """The card, its scaling and its validation as JSON (`load_scorecard` reads it back)."""
    card = fit.card.card
    return json.dumps({
        "format": FORMAT, "source": source, "median_bill_eur": fit.card.median_bill_eur,
        "scaling": {"base_score": credit.BASE_SCORE, "base_odds": credit.BASE_ODDS,
                    "pdo": credit.PDO},
        "bad_definition": f"balance above one mean bill within {credit.SCORECARD_OUTCOME_MONTHS} "
                          "months",
        "features": [
            {"name": name, "upper_edges": card.edges[j].tolist(), "points": card.points[j].tolist(),
             "woe": card.woe[j].tolist(), "bad_rate": card.bad_rate[j].tolist()}
            for j, name in enumerate(card.features)],
        "coef": card.coef.tolist(), "intercept": card.intercept,
        "validation": fit.metrics,
        "calibration": fit.calibration.to_dict(orient="records"),
    }, indent=2)


def load_scorecard(path: Path) -> BookCard:
    """Read a scorecard written by `scorecard_json`; errors name the file and the field."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"credit.scorecard: {path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"credit.scorecard: {path} is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"credit.scorecard: {path}, field 'format': not a {FORMAT} file")
    scaling = data.get("scaling", {})
    if scaling != {"base_score": credit.BASE_SCORE, "base_odds": credit.BASE_ODDS,
                   "pdo": credit.PDO}:
        raise InputError(f"credit.scorecard: {path}, field 'scaling': {scaling} differs from "
                         "this version's points scaling")
    try:
        features = data["features"]
        names = tuple(str(f["name"]) for f in features)
        edges = tuple(np.asarray(f["upper_edges"], dtype=np.float64) for f in features)
        points = tuple(np.asarray(f["points"], dtype=np.float64) for f in features)
        woe = tuple(np.asarray(f["woe"], dtype=np.float64) for f in features)
        rate = tuple(np.asarray(f["bad_rate"], dtype=np.float64) for f in features)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"credit.scorecard: {path}, field 'features': malformed ({exc})") from None
    unknown = sorted(set(names) - set(BOOK_FEATURES))
    if unknown:
        raise InputError(f"credit.scorecard: {path}, field 'features': unknown feature(s) "
                         f"{', '.join(unknown)}")
    for name, e, p in zip(names, edges, points, strict=True):
        if len(p) != len(e) + 1 or not np.isfinite(p).all():
            raise InputError(f"credit.scorecard: {path}, feature '{name}': needs one more points "
                             "value than edges, all finite")
    median = data.get("median_bill_eur")
    if not isinstance(median, int | float) or not median > 0:
        raise InputError(f"credit.scorecard: {path}, field 'median_bill_eur': must be a positive "
                         "number")
    card = credit.Scorecard(features=names, edges=edges, woe=woe, bad_rate=rate, points=points,
                            coef=np.asarray(data.get("coef", []), dtype=np.float64),
                            intercept=float(data.get("intercept", 0.0)))
    return BookCard(card, float(median))
