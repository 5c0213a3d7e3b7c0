"""M&V of simulated events: the best baseline recovers the delivered reduction; bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scenarios.cli import app
from scenarios.schema import WeatherConfig
from sim.weather import build_weather

runner = CliRunner()
EVENT_DAYS = ("2016-05-02", "2016-05-04", "2016-05-10", "2016-05-12", "2016-05-19")
WINDOW = ("17:00", "19:00")
SHARE = 0.3  # delivered share of the window load


def _loads(time: pd.DatetimeIndex, temperature: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Known-truth loads [customer, time] [kW]: an evening and a morning peak per customer,
    half of the customers with heating on the day's heating degrees (what a regression is
    for), a day level shared by all customers and visible all day (what a same-day adjustment
    is for), and independent 15-min noise."""
    rng = np.random.default_rng(seed)
    hour = (time.hour + time.minute / 60.0).to_numpy()
    day = (time.normalize() - time[0].normalize()).days.to_numpy()
    level = rng.lognormal(0.0, 0.08, day.max() + 1)[day]
    daily_t = pd.Series(temperature).groupby(day).transform("mean").to_numpy()
    hdd = np.maximum(15.5 - daily_t, 0.0)
    size = rng.lognormal(0.0, 0.3, n)[:, None]
    evening = rng.uniform(0.8, 1.6, n)[:, None]
    heating = np.where(np.arange(n) % 2 == 0, rng.uniform(0.05, 0.15, n), 0.0)[:, None]
    shape = (0.5 + evening * np.exp(-((hour - 18.0) ** 2) / 8.0)
             + 0.3 * np.exp(-((hour - 8.0) ** 2) / 4.0))
    weekend = np.asarray(time.weekday >= 5)[None, :]
    kw = (size * shape * np.where(weekend, 1.2, 1.0) + heating * hdd[None, :]) * level[None, :]
    return kw * rng.lognormal(0.0, 0.10, kw.shape)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """60 meters at 15 min over 12 weeks; on event days 30 % of the window load is shed."""
    folder = tmp_path_factory.mktemp("mv")
    time = pd.date_range("2016-03-01", "2016-05-24", freq="15min", inclusive="left")
    weather = build_weather(WeatherConfig(), time, seed=3, base_dir=Path("."))
    temperature = weather["temperature_c"].values
    kw = _loads(time, temperature, 60, seed=9)
    in_window = (time.hour >= 17) & (time.hour < 19)
    event = np.isin(time.normalize(), pd.DatetimeIndex(EVENT_DAYS)) & in_window
    shed = np.where(event[None, :], SHARE * kw, 0.0)
    ids = [f"M-{i:05d}" for i in range(kw.shape[0])]
    meter = pd.DataFrame({"customer_id": np.repeat(ids, len(time)),
                          "timestamp": np.tile(time.strftime("%Y-%m-%d %H:%M"), len(ids)),
                          "kwh": ((kw - shed) * 0.25).ravel().round(6)})
    # A local wall-clock meter has no readings in the hour skipped on 27 March.
    meter = meter[~meter["timestamp"].str.startswith("2016-03-27 02:")]
    meter.to_csv(folder / "meter.csv", index=False)
    pd.DataFrame({"timestamp": time.strftime("%Y-%m-%d %H:%M"),
                  "temperature_c": temperature.round(3),
                  "ghi_w_m2": np.clip(800 * np.sin((time.hour - 6) / 14 * np.pi), 0, None).round(1)}
                 ).to_csv(
        folder / "weather.csv", index=False)
    pd.DataFrame({"date": EVENT_DAYS, "start": WINDOW[0], "end": WINDOW[1]}).to_csv(
        folder / "events.csv", index=False)
    truth = pd.Series([shed[:, time.normalize() == d].sum() / in_window[:96].sum()
                       for d in pd.DatetimeIndex(EVENT_DAYS)], index=list(EVENT_DAYS))
    return folder, truth


def test_mv_recovers_delivered_reduction(case):
    folder, truth = case
    out = folder / "out"
    done = runner.invoke(app, ["mv", str(folder / "meter.csv"), str(folder / "events.csv"),
                               "-o", str(out), "--weather", str(folder / "weather.csv")])
    assert done.exit_code == 0, done.output
    events = pd.read_csv(out / "mv_events.csv")
    best = events[events["best"]].groupby("date")["reduction_kw"].sum()
    for day, delivered in truth.items():
        assert best[day] == pytest.approx(delivered, rel=0.10), (day, best[day], delivered)
    accuracy = pd.read_csv(out / "mv_accuracy.csv")
    assert set(accuracy["baseline"]) == {"10of10", "10of10_adjusted", "high4of5", "regression",
                                         "regression_adjusted"}
    assert (accuracy.groupby("customer_id")["best"].sum() == 1).all()
    assert (out / "mv.png").stat().st_size > 1000
    print(done.output)


@pytest.mark.parametrize(("rows", "expected"), [
    ("date,start,end\n2016-05-02,17:00,19:00\n2017-01-10,17:00,19:00\n",
     "events.csv, line 3, column 'date': 2017-01-10 lies outside the meter data"),
    ("date,start,end\n2016-05-02,17:00,16:00\n", "events.csv, line 2, column 'end'"),
    ("date,start,end\n2016-05-02,5pm,19:00\n", "events.csv, line 2, column 'start'"),
    ("date,start\n2016-05-02,17:00\n", "events.csv, column 'end': required column is missing"),
    ("date,start,end,customer_id\n2016-05-02,17:00,19:00,NOPE\n",
     "events.csv, line 2, column 'customer_id': meter 'NOPE'"),
])
def test_bad_events_exit_1_naming_file_line_field(case, tmp_path, rows, expected):
    folder, _ = case
    events = tmp_path / "events.csv"
    events.write_text(rows)
    out = tmp_path / "out"
    done = runner.invoke(app, ["mv", str(folder / "meter.csv"), str(events), "-o", str(out)])
    assert done.exit_code == 1, done.output
    assert expected in done.output and len(done.output.strip().splitlines()) == 1
    assert not out.exists()


RESPONSE_DAYS = ("2016-05-02", "2016-05-03", "2016-05-04", "2016-05-09", "2016-05-10",
                 "2016-05-11", "2016-05-12", "2016-05-17", "2016-05-18", "2016-05-19")
TRUE_RESPONSE = {"performance_mean": 0.8, "performance_sd": 0.1, "fatigue_per_event": 0.03,
                 "rebound_share": 0.5}
TOLERANCE = {"performance_mean": 0.04, "performance_sd": 0.04, "fatigue_per_event": 0.015,
             "rebound_share": 0.12}


@pytest.fixture(scope="module")
def response_case(tmp_path_factory):
    """80 meters, 10 events each: delivered share N(0.8, 0.1) of the contracted kW, opt-out for
    good with probability 0.03 per event already called, half the curtailed energy paid back
    over the 2 h after the event."""
    folder = tmp_path_factory.mktemp("response")
    time = pd.date_range("2016-03-01", "2016-05-24", freq="15min", inclusive="left")
    temperature = build_weather(WeatherConfig(), time, seed=3, base_dir=Path("."))[
        "temperature_c"].values
    kw = _loads(time, temperature, 80, seed=21)
    rng = np.random.default_rng(8)
    in_window = (time.hour >= 17) & (time.hour < 19)
    after = (time.hour >= 19) & (time.hour < 21)
    contracted = 0.4 * kw[:, in_window].mean(axis=1)
    out = np.zeros(len(kw), dtype=bool)
    for k, day in enumerate(pd.DatetimeIndex(RESPONSE_DAYS)):
        on_day = np.asarray(time.normalize() == day)
        # customers.response: before event k a participant opts out for good w.p. fatigue·k.
        out |= rng.random(len(kw)) < TRUE_RESPONSE["fatigue_per_event"] * k
        share = np.where(out, 0.0, rng.normal(0.8, 0.1, len(kw)))
        cut = np.minimum(share * contracted, 0.9 * kw[:, on_day & in_window].min(axis=1))
        kw[:, on_day & in_window] -= cut[:, None]
        kw[:, on_day & after] += (0.5 * cut * 2.0 / 2.0)[:, None]  # 2 h curtailed, 2 h payback
    ids = [f"R{i:03d}" for i in range(len(kw))]
    meter = pd.DataFrame({"customer_id": np.repeat(ids, len(time)),
                          "timestamp": np.tile(time.strftime("%Y-%m-%d %H:%M"), len(ids)),
                          "kwh": (kw * 0.25).ravel().round(6)})
    meter = meter[~meter["timestamp"].str.startswith("2016-03-27 02:")]
    meter.to_csv(folder / "meter.csv", index=False)
    events = pd.DataFrame([{"date": d, "start": "17:00", "end": "19:00", "customer_id": cid,
                            "contracted_kw": round(float(c), 4)}
                           for d in RESPONSE_DAYS for cid, c in zip(ids, contracted, strict=True)])
    events.to_csv(folder / "events.csv", index=False)
    return folder


def test_response_parameters_are_recovered(response_case):
    folder = response_case
    out = folder / "out"
    done = runner.invoke(app, ["mv", str(folder / "meter.csv"), str(folder / "events.csv"),
                               "-o", str(out)])
    assert done.exit_code == 0, done.output
    import tomllib

    table = tomllib.loads((out / "response.toml").read_text())["response"]
    for name, truth in TRUE_RESPONSE.items():
        assert table[name] == pytest.approx(truth, abs=TOLERANCE[name]), (name, table[name])
    assert table["rebound_h"] == 2.0
    # The table is a valid [response] section of a scenario.
    from scenarios.schema import ResponseConfig

    ResponseConfig(**table)
