"""Day types, public holidays and daylight saving time."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from scenarios.errors import InputError
from sim.calendar import (
    SATURDAY,
    SUNDAY_HOLIDAY,
    WEEKDAY,
    day_index,
    day_types,
    day_types_of_dates,
    dst_transition_days,
    hour_of_day,
    utc_offset_h,
)


def test_day_types_with_holidays_and_eves():
    days = pd.DatetimeIndex(["2016-03-25", "2016-03-26", "2016-03-27", "2016-03-29",
                             "2016-12-23", "2016-12-24", "2016-12-26", "2019-12-24"])
    got = day_types_of_dates(days, "DE")
    # Good Friday, Saturday, Easter Sunday, a Tuesday, a Friday, Christmas Eve (a Saturday),
    # Boxing Day, Christmas Eve 2019 on a Tuesday (counts as Saturday).
    assert list(got) == [SUNDAY_HOLIDAY, SATURDAY, SUNDAY_HOLIDAY, WEEKDAY, WEEKDAY, SATURDAY,
                         SUNDAY_HOLIDAY, SATURDAY]
    # Country matters: 4 July is a holiday in the US, not in Germany.
    july4 = pd.DatetimeIndex(["2016-07-04"])
    assert day_types_of_dates(july4, "US")[0] == SUNDAY_HOLIDAY
    assert day_types_of_dates(july4, "DE")[0] == WEEKDAY


def test_day_types_per_step_and_bad_country():
    time = pd.date_range("2016-05-01", periods=96 * 2, freq="15min")  # Sunday (1 May), Monday
    kinds = day_types(time, "DE")
    assert (kinds[:96] == SUNDAY_HOLIDAY).all() and (kinds[96:] == WEEKDAY).all()
    with pytest.raises(InputError, match="country"):
        day_types(time, "XX")


@pytest.mark.parametrize(("tz", "spring", "fall"), [
    ("Europe/Berlin", dt.date(2016, 3, 27), dt.date(2016, 10, 30)),
    ("America/New_York", dt.date(2016, 3, 13), dt.date(2016, 11, 6)),
])
def test_dst_transitions(tz, spring, fall):
    assert dst_transition_days(2016, tz) == (spring, fall)


def test_utc_offsets_around_the_transitions():
    spring = pd.date_range("2016-03-27 01:00", periods=12, freq="15min")
    offsets = utc_offset_h(spring, "Europe/Berlin")
    assert list(offsets[:4]) == [1.0] * 4   # 01:xx CET
    assert list(offsets[8:]) == [2.0] * 4   # 03:xx CEST; the skipped 02:xx get the summer offset
    fall = pd.date_range("2016-10-30 01:00", periods=12, freq="15min")
    assert list(utc_offset_h(fall, "Europe/Berlin")) == [2.0] * 8 + [1.0] * 4
    assert (utc_offset_h(pd.date_range("2016-01-01", periods=4, freq="h"), "Asia/Kolkata") == 5.5).all()
    with pytest.raises(InputError):
        utc_offset_h(spring.tz_localize("UTC"), "Europe/Berlin")


def test_hour_and_day_index():
    time = pd.date_range("1970-01-01 23:30", periods=3, freq="15min")
    np.testing.assert_allclose(hour_of_day(time), [23.5, 23.75, 0.0])
    assert list(day_index(time)) == [0, 0, 1]
