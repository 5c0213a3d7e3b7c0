"""Monthly payment histories: synthesized from a latent credit risk, or read from CSV.

The synthetic process is a two-state (normal / hardship) Markov chain per customer whose
transition probabilities depend on a latent risk ``z``; in hardship a customer pays part of the
bill late, arrears build up, and a disconnection notice is sent when the unpaid balance exceeds
two average bills. The latent risk correlates with segment (businesses pay more reliably than
households, farms are seasonal) and with the bill size relative to the segment's median (a large
bill is a burden). This mirrors the arrears dynamics reported for utility customers, e.g. the
roll rates used in utility credit scoring (Thomas, Edelman & Crook, *Credit Scoring and its
Applications*, SIAM 2002, ch. 6), without claiming their exact values.

Dataset layout: dims ``(customer, month)``; ``month`` is a ``datetime64`` coordinate of month
starts, oldest first; ``bill_eur``, ``paid_eur``, ``balance_eur`` [EUR], ``days_late`` [d],
``in_arrears`` and ``disconnection_notice`` (bool). Synthetic histories also carry the latent
risk ``latent_risk[customer]`` for testing the models against the truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from customers.io import read_text_csv
from customers.population import keyed_normal, keyed_uniform
from scenarios.errors import InputError
from scenarios.schema import Scenario

#: Shift of the latent risk per segment [-].
SEGMENT_RISK: dict[str, float] = {
    "residential": 0.0,
    "commercial": -0.3,
    "industrial": -0.6,
    "agricultural": 0.2,
}
#: Unpaid balance, as a share of the customer's mean bill, above which a month is in arrears.
ARREARS_SHARE_OF_BILL = 0.25
#: Unpaid balance, in mean bills, that triggers a disconnection notice.
NOTICE_BILLS = 2.0
HISTORY_UNITS: dict[str, str] = {
    "bill_eur": "EUR",
    "paid_eur": "EUR",
    "balance_eur": "EUR",
    "days_late": "d",
    "in_arrears": "bool",
    "disconnection_notice": "bool",
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def estimate_monthly_bill(population: xr.Dataset, scenario: Scenario) -> np.ndarray:
    """Mean monthly bill on the current tariff from annual energy [EUR/month].

    Uses ``annual_kwh`` plus EV energy, the current tariff's mean energy price over the day and
    its standing charge; PV self-consumption lowers the bill by ≈ 30 % of the PV yield.
    """
    tariff = next(t for t in scenario.offers.tariffs if t.name == scenario.offers.current_tariff)
    if tariff.kind == "flat":
        price = float(tariff.price_eur_per_kwh or 0.0)
    else:
        price = sum((p.end_h - p.start_h) * p.price_eur_per_kwh for p in tariff.periods) / 24.0
    energy = population["annual_kwh"].values + 365.0 * population["ev_kwh_per_day"].values
    energy = np.maximum(energy - 0.3 * 950.0 * population["pv_kwp"].values, 0.1 * energy)
    return energy * price / 12.0 + tariff.fixed_eur_per_month


def history_months(end: np.datetime64 | pd.Timestamp, months: int) -> np.ndarray:
    """Month starts of the ``months`` months before ``end``'s month, oldest first."""
    last = pd.Timestamp(end).to_period("M") - 1
    periods = pd.period_range(end=last, periods=months, freq="M")
    return periods.to_timestamp().to_numpy(dtype="datetime64[ns]")


def latent_risk(population: xr.Dataset, monthly_bill_eur: np.ndarray, seed: int) -> np.ndarray:
    """Latent credit risk per customer [-]: standard normal + segment shift + bill burden."""
    segment = population["segment"].values
    shift = np.array([SEGMENT_RISK[s] for s in segment])
    bill = np.asarray(monthly_bill_eur, dtype=np.float64)
    burden = np.zeros(len(bill))
    for name in np.unique(segment):
        mask = segment == name
        burden[mask] = np.log(np.maximum(bill[mask], 1e-3) / np.median(np.maximum(bill[mask], 1e-3)))
    z = keyed_normal(seed, "latent_risk", population["customer"].values)
    return z + shift + 0.3 * burden


def simulate_payments(
    monthly_bill_eur: np.ndarray, risk: np.ndarray, months: np.ndarray, seed: int,
    customer_ids: np.ndarray,
) -> dict[str, np.ndarray]:
    """Run the normal/hardship payment chain for every customer over ``months``.

    Parameters
    ----------
    monthly_bill_eur
        Mean monthly bill per customer [EUR].
    risk
        Latent risk per customer [-].
    months
        Month starts (``datetime64``); the bill follows a winter-high seasonal swing.
    seed, customer_ids
        Key of the random numbers: each customer's history depends only on (seed, its id).

    Returns
    -------
    dict
        ``[customer, month]`` arrays named as in `HISTORY_UNITS`.
    """
    n, m = len(risk), len(months)
    ids = np.asarray(customer_ids)

    def uniform(k: int, slot: int) -> np.ndarray:
        return keyed_uniform(seed, "payments", ids, k, slot)

    mean_bill = np.asarray(monthly_bill_eur, dtype=np.float64)
    month_of_year = pd.DatetimeIndex(months).month.to_numpy()
    season = 1.0 + 0.15 * np.cos(2.0 * np.pi * (month_of_year - 1) / 12.0)
    noise = np.column_stack([keyed_normal(seed, "bill-noise", ids, k) for k in range(m)]) \
        if m else np.zeros((n, 0))
    bill = mean_bill[:, None] * season[None, :] * np.exp(0.08 * noise)

    p_enter = _sigmoid(-5.0 + 1.5 * risk)
    p_exit = _sigmoid(-0.3 - 0.6 * risk)
    p_on_time = _sigmoid(2.5 - 1.0 * risk)
    out = {name: np.zeros((n, m)) for name in ("paid_eur", "balance_eur", "days_late")}
    in_arrears = np.zeros((n, m), bool)
    notice = np.zeros((n, m), bool)
    hardship = uniform(-1, 0) < p_enter / (p_enter + p_exit)   # stationary start
    balance = np.zeros(n)
    for k in range(m):
        u = np.stack([uniform(k, slot) for slot in range(10)])
        hardship = np.where(hardship, u[0] >= p_exit, u[0] < p_enter)
        due = balance + bill[:, k]
        # Normal months pay the bill and part of any arrears; hardship months pay a fraction.
        normal_paid = bill[:, k] + balance * (0.4 + 0.5 * u[1])
        # The median of three uniforms is Beta(2, 2): a partial payment share around ½.
        share = np.where(u[2] < 0.3, 0.0, np.median(u[6:9], axis=0))
        hardship_paid = bill[:, k] * share
        paid = np.minimum(np.where(hardship, hardship_paid, normal_paid), due)
        # Geometric delay by inversion, mean 4–4·(1 + risk⁺) days.
        p_geo = 1.0 / (4.0 + 4.0 * np.maximum(risk, 0.0))
        delay = np.ceil(np.log(u[5]) / np.log1p(-p_geo))
        late_normal = np.where(u[3] < p_on_time, 0.0, 1.0 + delay)
        late_hardship = 10.0 + 50.0 * u[4]
        days = np.minimum(np.where(hardship, late_hardship, late_normal), 90.0)
        balance = due - paid
        arrears = balance > ARREARS_SHARE_OF_BILL * mean_bill
        sent = balance > NOTICE_BILLS * mean_bill
        # A notice makes most customers settle part of the balance within the month.
        settle = sent & (u[9] < 0.6)
        paid = paid + np.where(settle, 0.5 * balance, 0.0)
        balance = np.where(settle, 0.5 * balance, balance)
        out["paid_eur"][:, k] = paid
        out["balance_eur"][:, k] = balance
        out["days_late"][:, k] = np.where(balance > 1e-9, np.maximum(days, 30.0), days)
        in_arrears[:, k] = arrears
        notice[:, k] = sent
    return {"bill_eur": bill, **out, "in_arrears": in_arrears, "disconnection_notice": notice}


def history_dataset(customer: np.ndarray, months: np.ndarray, arrays: dict[str, np.ndarray],
                    attrs: dict | None = None) -> xr.Dataset:
    """Labelled payment history from ``[customer, month]`` arrays."""
    ds = xr.Dataset(coords={"customer": np.asarray(customer, np.int64), "month": months},
                    attrs=dict(attrs or {}))
    for name, units in HISTORY_UNITS.items():
        values = np.asarray(arrays[name])
        values = values.astype(bool) if units == "bool" else values.astype(np.float64)
        ds[name] = (("customer", "month"), values, {"units": units})
    return ds


def synthesize_payment_history(
    population: xr.Dataset,
    scenario: Scenario,
    *,
    monthly_bill_eur: np.ndarray | None = None,
    months: int | None = None,
) -> xr.Dataset:
    """Synthetic payment history of every customer, ending the month before the window.

    Parameters
    ----------
    population
        Customers (``segment``, energy fields).
    scenario
        ``credit.history_months``, ``seed``, ``time.start`` and the current tariff.
    monthly_bill_eur
        Mean monthly bill per customer [EUR]; default `estimate_monthly_bill`.
    months
        History length [months]; default ``scenario.credit.history_months``.
    """
    bill = (estimate_monthly_bill(population, scenario) if monthly_bill_eur is None
            else np.asarray(monthly_bill_eur, dtype=np.float64))
    count = months or scenario.credit.history_months
    month = history_months(np.datetime64(scenario.time.start), count)
    risk = latent_risk(population, bill, scenario.seed)
    arrays = simulate_payments(bill, risk, month, scenario.seed, population["customer"].values)
    ds = history_dataset(population["customer"].values, month, arrays,
                         attrs={"source": "synthetic"})
    ds["latent_risk"] = ("customer", risk, {"units": "1", "long_name": "latent credit risk"})
    return ds


def _read_history_table(path: Path) -> pd.DataFrame:
    """The CSV as strings, or InputError naming the file and, where it can, the line."""
    frame = read_text_csv(path, empty_hint="; expected a header "
                          "customer_id,month,bill_eur,paid_eur,days_late and one row per month")
    if len(frame) == 0:
        raise InputError(f"{path}: no payment rows after the header")
    return frame


def read_payment_history_csv(path: Path | str, population: xr.Dataset) -> xr.Dataset:
    """Read a payment history CSV: ``customer_id, month (YYYY-MM), bill_eur, paid_eur, days_late``
    and optional ``disconnection_notice`` (true/false).

    Every customer of the population needs the same set of consecutive months. The balance,
    arrears flag and (when absent) notices are derived as in the synthetic process.

    Raises
    ------
    InputError
        Naming the file, the line and the column of the first bad value.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: payment history file not found")
    frame = _read_history_table(path)
    for column in ("customer_id", "month", "bill_eur", "paid_eur", "days_late"):
        if column not in frame.columns:
            raise InputError(f"{path}, column '{column}': required column is missing")
    numbers = {}
    for column in ("customer_id", "bill_eur", "paid_eur", "days_late"):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
        if len(bad):
            i = int(bad[0])
            raise InputError(f"{path}, line {i + 2}, column '{column}': "
                             f"'{frame[column].iloc[i]}' is not a non-negative number")
        numbers[column] = values
    month = pd.to_datetime(frame["month"], format="%Y-%m", errors="coerce")
    if month.isna().any():
        i = int(np.flatnonzero(month.isna().to_numpy())[0])
        raise InputError(f"{path}, line {i + 2}, column 'month': "
                         f"'{frame['month'].iloc[i]}' is not YYYY-MM")
    fractional = np.flatnonzero((numbers["customer_id"] % 1 != 0)
                                | (numbers["customer_id"] >= 2.0**63))
    if len(fractional):
        i = int(fractional[0])
        raise InputError(f"{path}, line {i + 2}, column 'customer_id': "
                         f"'{frame['customer_id'].iloc[i]}' is not a customer id (an integer)")
    ids = numbers["customer_id"].astype(np.int64)
    known = np.isin(ids, population["customer"].values)
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        raise InputError(f"{path}, line {i + 2}, column 'customer_id': "
                         f"customer {ids[i]} is not in the population")
    frame = frame.assign(_id=ids, _month=month)
    if frame.duplicated(["_id", "_month"]).any():
        i = int(np.flatnonzero(frame.duplicated(["_id", "_month"]).to_numpy())[0])
        raise InputError(f"{path}, line {i + 2}, column 'month': duplicate month for customer")
    months = np.sort(frame["_month"].unique())
    expected = pd.period_range(pd.Timestamp(months[0]), pd.Timestamp(months[-1]), freq="M")
    if len(expected) != len(months):
        raise InputError(f"{path}, column 'month': months are not consecutive")
    customers = population["customer"].values
    wanted = len(customers) * len(months)
    if len(frame) != wanted:
        raise InputError(f"{path}: expected {wanted} rows ({len(customers)} customers × "
                         f"{len(months)} months), found {len(frame)}")
    frame = frame.assign(**{c: numbers[c] for c in ("bill_eur", "paid_eur", "days_late")})
    grid = frame.set_index(["_id", "_month"]).sort_index()
    shape = (len(customers), len(months))

    def matrix(column: str) -> np.ndarray:
        return grid[column].unstack().reindex(index=customers, columns=months).to_numpy(np.float64)

    bill, paid, days = matrix("bill_eur"), matrix("paid_eur"), matrix("days_late")
    balance = np.cumsum(bill - paid, axis=1).clip(min=0.0)
    mean_bill = np.maximum(bill.mean(axis=1, keepdims=True), 1e-6)
    if "disconnection_notice" in frame.columns:
        text = grid["disconnection_notice"].str.strip().str.lower()
        notice = text.isin({"true", "1", "yes"}).unstack().reindex(
            index=customers, columns=months).to_numpy(bool)
    else:
        notice = balance > NOTICE_BILLS * mean_bill
    arrays = {"bill_eur": bill, "paid_eur": paid, "balance_eur": balance, "days_late": days,
              "in_arrears": balance > ARREARS_SHARE_OF_BILL * mean_bill,
              "disconnection_notice": notice.reshape(shape)}
    return history_dataset(customers, np.asarray(months, "datetime64[ns]"), arrays,
                           attrs={"source": "file", "file": str(path)})
