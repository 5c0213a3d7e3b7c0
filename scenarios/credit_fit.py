"""`gridflex credit fit`: fit and validate the scorecard on a utility's whole payment book."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from scenarios.outputs import staged_output


def fit_credit_book_file(history_file: Path, out: Path, *, today: dt.date | None = None,
                         seed: int = 0, source: str | None = None) -> str:
    """Read the book, fit, validate out of time, write the scorecard JSON and a calibration CSV
    beside it (``<out stem>_calibration.csv``); return the validation summary. ``source`` names
    the book in the scorecard and summary (default: the file)."""
    from customers.credit_book import fit_book, read_book_csv, scorecard_json

    history = read_book_csv(history_file, today=today)
    name = source or str(history_file)
    fit = fit_book(history, name=name, seed=seed)
    calibration = out.with_name(f"{out.stem}_calibration.csv")
    with staged_output(out.parent, owns_folder=False) as staging:
        (staging / out.name).write_text(scorecard_json(fit, name), encoding="utf-8")
        fit.calibration.to_csv(staging / calibration.name, index=False, float_format="%.6g")
    m = fit.metrics
    overlap = (f" (outcome windows overlap the hold-out by {m['outcome_overlap_months']} months)"
               if m["outcome_overlap_months"] else "")
    return "\n".join([
        f"{name}: {m['customers']:,} customers over {m['months']} months, "
        f"{m['customers_in_arrears']:,} ever in serious arrears",
        f"fitted on {m['train_rows']:,} customer-months ({m['train_bad']:,} bad); held out "
        f"{m['holdout_month']}: {m['holdout_rows']:,} customers ({m['holdout_bad']:,} bad){overlap}",
        f"hold-out AUC {m['auc']:.3f} (95 % bootstrap {m['auc_low']:.3f}-{m['auc_high']:.3f}), "
        f"KS {m['ks']:.3f}, Gini {m['gini']:.3f}",
        f"scores: {m['distinct_scores']:,} distinct; the largest group sharing one score holds "
        f"{m['largest_tie_share']:.1%} of customers",
        "features: " + ", ".join(fit.card.card.features),
        f"wrote {out} and {calibration}",
    ])
