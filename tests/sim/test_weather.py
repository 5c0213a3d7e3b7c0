"""Synthetic weather per climate, solar geometry with daylight saving, and weather CSV checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.errors import InputError
from scenarios.schema import WeatherConfig
from sim.weather import CLIMATES, build_weather
from tests.sim.population_factory import year_index

CLIMATE_MEAN_ATOL_K = 2.5  # annual mean vs normal; fronts (sd 4 K, tau 3.5 d) give se ≈ 0.55 K


@pytest.fixture(scope="module")
def years():
    time = year_index(2016)
    return {c: build_weather(WeatherConfig(climate=c), time, seed=4, base_dir=Path("."))
            for c in CLIMATES}


def test_variables_units_and_reproducibility(years):
    ds = years["temperate"]
    assert {v: ds[v].attrs["units"] for v in ds.data_vars} == {
        "temperature_c": "degC", "ghi_w_m2": "W/m2", "pv_factor": "1"}
    again = build_weather(WeatherConfig(), year_index(2016), seed=4, base_dir=Path("."))
    assert again.identical(ds)
    other = build_weather(WeatherConfig(), year_index(2016), seed=5, base_dir=Path("."))
    assert not np.array_equal(other["temperature_c"].values, ds["temperature_c"].values)


@pytest.mark.parametrize("climate", list(CLIMATES))
def test_climate_statistics(years, climate):
    ds = years[climate]
    t = ds["temperature_c"].to_series()
    assert abs(t.mean() - CLIMATES[climate].mean_c) < CLIMATE_MEAN_ATOL_K
    monthly = t.groupby(t.index.month).mean()
    assert monthly[7] - monthly[1] > 10.0
    # Fronts: day-to-day anomalies persist (lag-1-day autocorrelation of daily means).
    daily = t.resample("D").mean()
    anomaly = daily - daily.rolling(31, center=True, min_periods=1).mean()
    assert anomaly.autocorr(1) > 0.5
    pv_yield = float(ds["pv_factor"].sum()) * 0.25
    assert 750.0 < pv_yield < 1700.0  # kWh/kWp·a, European range
    assert 0.0 <= float(ds["pv_factor"].min()) and float(ds["pv_factor"].max()) <= 1.0


def test_climates_rank_as_expected(years):
    means = {c: float(years[c]["temperature_c"].mean()) for c in CLIMATES}
    assert means["mediterranean"] > means["temperate"] > means["nordic"]
    ghi = {c: float(years[c]["ghi_w_m2"].sum()) for c in CLIMATES}
    assert ghi["mediterranean"] > ghi["temperate"] > ghi["nordic"]


def test_no_sun_at_night_and_dst_shifts_solar_noon(years):
    ds = years["temperate"]
    ghi = ds["ghi_w_m2"].to_series()
    assert float(ghi[ghi.index.hour.isin([0, 1, 2, 3, 22, 23])].max()) == 0.0
    profile = ghi.groupby([ghi.index.month, ghi.index.hour + ghi.index.minute / 60]).mean()
    noon_jan = profile.loc[1].idxmax()
    noon_jul = profile.loc[7].idxmax()
    # Kassel (9.5° E): solar noon ≈ 12:20 CET in winter, ≈ 13:15 CEST in summer.
    assert 11.75 <= noon_jan <= 12.75
    assert 12.75 <= noon_jul <= 13.75


def test_temperature_offset_is_added(years):
    hot = build_weather(WeatherConfig(temperature_offset_c=5.0), year_index(2016), seed=4,
                        base_dir=Path("."))
    np.testing.assert_allclose(hot["temperature_c"].values,
                               years["temperate"]["temperature_c"].values + 5.0, rtol=0, atol=1e-12)


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("timestamp,temperature_c,ghi_w_m2\n" + "\n".join(rows) + "\n")
    return path


def _hourly_rows(start="2016-06-01", hours=50, offset=""):
    stamps = pd.date_range(start, periods=hours, freq="h")
    return [f"{s:%Y-%m-%dT%H:%M}{offset},{10 + (i % 24) / 2:.2f},{max(0, 600 - abs(12 - s.hour) * 100)}"
            for i, s in enumerate(stamps)]


def _to_kelvin(row: str) -> str:
    stamp, temperature, ghi = row.split(",")
    return f"{stamp},{float(temperature) + 273.15:.2f},{ghi}"


def test_weather_file_is_interpolated(tmp_path):
    _write(tmp_path / "w.csv", _hourly_rows())
    time = pd.date_range("2016-06-01", periods=4 * 24, freq="15min")
    cfg = WeatherConfig(source="file", file=Path("w.csv"))
    ds = build_weather(cfg, time, seed=0, base_dir=tmp_path)
    t = ds["temperature_c"].values
    # Hourly values describe the hour (centres 00:30 → 10.0, 01:30 → 10.5); a step takes the
    # value at its own centre: 01:00-01:15 → 10 + 0.5·37.5/60, 01:30-01:45 → 10.5 + 0.5·7.5/60.
    assert t[0] == pytest.approx(10.0)
    assert t[4] == pytest.approx(10.3125) and t[6] == pytest.approx(10.5625)
    assert float(ds["pv_factor"].values[:8].max()) == 0.0  # no sun at night even from a file


def test_weather_file_with_utc_offsets_is_converted_to_local(tmp_path):
    path = _write(tmp_path / "w.csv", _hourly_rows(start="2016-05-31 22:00", offset="Z"))
    time = pd.date_range("2016-06-01", periods=24, freq="h")
    ds = build_weather(WeatherConfig(source="file", file=path), time, seed=0, base_dir=tmp_path)
    # 2016-06-01 00:00 CEST = 2016-05-31 22:00 UTC, the first row (10.0 °C).
    assert ds["temperature_c"].values[0] == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r[:5] + ["2016-06-01T05:00,zzz,0"] + r[6:], r"row 7: temperature_c 'zzz'"),
        (lambda r: r[:3] + ["yesterday,1,0"] + r[4:], r"row 5: unreadable timestamp"),
        (lambda r: r[:3] + [r[2]] + r[4:], r"row 5: timestamp not after"),
        (lambda r: r[:10] + r[15:], r"row 12: gap of 6 h"),
        (lambda r: [_to_kelvin(x) for x in r], "Kelvin"),
        (lambda r: r[:8] + ["2016-06-01T08:00,12,2500"] + r[9:], r"row 10: ghi_w_m2 2500"),
        (lambda r: r[:20], "covers"),
    ],
)
def test_weather_file_errors_name_file_and_row(tmp_path, mutate, message):
    path = _write(tmp_path / "bad.csv", mutate(_hourly_rows()))
    time = pd.date_range("2016-06-01", periods=48, freq="h")
    with pytest.raises(InputError, match=message) as info:
        build_weather(WeatherConfig(source="file", file=path), time, seed=0, base_dir=tmp_path)
    assert "bad.csv" in str(info.value)


def test_weather_file_missing_or_without_columns(tmp_path):
    time = pd.date_range("2016-06-01", periods=4, freq="h")
    with pytest.raises(InputError, match="not found"):
        build_weather(WeatherConfig(source="file", file=Path("nope.csv")), time, seed=0,
                      base_dir=tmp_path)
    (tmp_path / "cols.csv").write_text("time,temp\n2016-06-01,3\n")
    with pytest.raises(InputError, match="missing column"):
        build_weather(WeatherConfig(source="file", file=Path("cols.csv")), time, seed=0,
                      base_dir=tmp_path)
