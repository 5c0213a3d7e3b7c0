"""Mixed interval lengths: every meter is screened at its own interval, energy never changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.errors import InputError
from sim.quality import ScreeningConfig, screen_meter_data


def _meter(cid: str, start: str, periods: int, minutes: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, periods=periods, freq=f"{minutes}min")
    hour = time.hour + time.minute / 60.0
    kw = (0.4 + 0.6 * np.exp(-((hour - 19) ** 2) / 4)) * rng.lognormal(0, 0.1, periods)
    return pd.DataFrame({"customer_id": cid, "timestamp": time.strftime("%Y-%m-%d %H:%M"),
                         "kwh": np.round(kw * minutes / 60.0, 5)})


def test_fifteen_and_sixty_minute_meters_keep_their_energy():
    frame = pd.concat([_meter("Q-15", "2016-01-04", 14 * 96, 15, 1),
                       _meter("H-60", "2016-01-04", 14 * 24, 60, 2),
                       _meter("0007", "2016-01-04", 14 * 48, 30, 3)], ignore_index=True)
    clean, report = screen_meter_data(frame)
    report = report.set_index("customer_id")
    assert report["step_min"].to_dict() == {"0007": 30.0, "H-60": 60.0, "Q-15": 15.0}
    assert (report["status"] == "ok").all() and (report["repaired_steps"] == 0).all()
    for cid, part in frame.groupby("customer_id"):
        got = clean.loc[clean["customer_id"] == cid, "kwh"].sum()
        assert got == pytest.approx(part["kwh"].sum(), rel=1e-12), cid
        steps = np.diff(clean.loc[clean["customer_id"] == cid, "timestamp"].to_numpy())
        assert (steps == np.timedelta64(int(report.loc[cid, "step_min"]), "m")).all()


def test_a_meter_switching_interval_is_refused_by_name():
    switching = pd.concat([_meter("SW-1", "2016-01-04", 7 * 96, 15, 4),
                           _meter("SW-1", "2016-01-11", 7 * 24, 60, 5)], ignore_index=True)
    frame = pd.concat([_meter("OK-1", "2016-01-04", 14 * 96, 15, 6), switching])
    with pytest.raises(InputError, match=r"SW-1 \(15 and 60 min\)") as caught:
        screen_meter_data(frame)
    assert "OK-1" not in str(caught.value)


def test_gaps_are_not_a_second_interval():
    frame = _meter("G", "2016-01-04", 14 * 96, 15, 7)
    frame = frame.drop(index=list(range(100, 104)) + list(range(300, 310)) + [500])
    _, report = screen_meter_data(frame)
    assert report.loc[0, "step_min"] == 15.0 and report.loc[0, "long_gaps"] == 1


def test_single_reading_needs_step_min():
    frame = pd.concat([_meter("A", "2016-01-04", 96, 15, 8), _meter("B", "2016-01-04", 1, 15, 9)])
    with pytest.raises(InputError, match="single reading: B .*--step-min"):
        screen_meter_data(frame)
    _, report = screen_meter_data(frame, ScreeningConfig(step_min=15))
    assert report.set_index("customer_id").loc["B", "step_min"] == 15.0


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from([5, 10, 15, 30, 60]), min_size=1, max_size=4),
       st.integers(min_value=0, max_value=2**16))
def test_any_mix_of_meter_intervals_keeps_every_meters_energy(minutes, seed):
    frame = pd.concat([_meter(f"M{i:03d}", "2016-02-01", 2 * 1440 // m, m, seed + i)
                       for i, m in enumerate(minutes)], ignore_index=True)
    # Spike and stuck rules off: this property is about intervals alone.
    clean, report = screen_meter_data(frame, ScreeningConfig(spike_level=1e6, stuck_steps=10**6))
    assert report.set_index("customer_id")["step_min"].tolist() == [float(m) for m in minutes]
    got = clean.groupby("customer_id")["kwh"].sum()
    want = frame.groupby("customer_id")["kwh"].sum()
    np.testing.assert_allclose(got.to_numpy(), want.reindex(got.index).to_numpy(), rtol=1e-12)
