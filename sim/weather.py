"""Weather of the simulated window: outdoor temperature, global irradiance and PV output per kWp.

Synthetic weather per named climate = seasonal cycle + diurnal cycle + autocorrelated weather
fronts (AR(1) anomalies with a time constant of days) + cloud cover from a latent AR(1) process,
turned into irradiance by solar geometry at a representative site of the climate:

- solar position: Spencer (1971) declination and equation of time (NOAA low-accuracy form);
- clear-sky global irradiance: Haurwitz (1945), ``GHI_cs = 1098 cos Z exp(-0.057 / cos Z)``;
- cloud cover → clear-sky index: Kasten & Czeplak (1980), ``k = 1 - 0.75 c^3.4``;
- diffuse fraction: Erbs, Klein & Duffie (1982); plane of array: isotropic sky (Liu & Jordan 1963);
- PV: plane-of-array irradiance × temperature derate (-0.4 %/K, NOCT cell model) × system
  performance ratio.

A weather CSV (``timestamp,temperature_c,ghi_w_m2``) can replace the synthetic series; it is
validated (parse errors, order, gaps, units, coverage) and interpolated onto the time grid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from scenarios.errors import InputError
from scenarios.schema import WeatherConfig
from sim.calendar import utc_offset_h
from sim.dataset import validate

SOLAR_CONSTANT_W_M2 = 1367.0
PERFORMANCE_RATIO = 0.86          # inverter, wiring, soiling, mismatch losses [-]
TEMPERATURE_COEFFICIENT = -0.004  # crystalline silicon power coefficient [1/K]
NOCT_RISE_K_PER_W_M2 = 25.0 / 800.0  # cell temperature rise over air (NOCT 45 °C) [K/(W/m2)]
ALBEDO = 0.2
MAX_FILE_GAP_H = 3.0


@dataclass(frozen=True)
class Climate:
    """A representative site and the statistics of its weather."""

    latitude_deg: float
    longitude_deg: float
    tz: str
    mean_c: float            # annual mean temperature [°C]
    seasonal_amplitude_k: float   # half the July–January difference [K]
    diurnal_winter_k: float  # half the day–night range in winter (clear sky) [K]
    diurnal_summer_k: float
    front_sd_k: float        # standard deviation of the weather-front anomaly [K]
    front_tau_h: float       # time constant of the fronts [h]
    cloud_winter: float      # mean cloud cover in winter [0-1]
    cloud_summer: float
    cloud_tau_h: float


CLIMATES: dict[str, Climate] = {
    # Kassel (DE): the SimBench profiles' country.
    "temperate": Climate(51.3, 9.5, "Europe/Berlin", 9.5, 8.8, 2.5, 5.0, 3.5, 72.0, 0.85, 0.68, 30.0),
    # Kyiv (UA): cold winters, warm summers.
    "continental": Climate(50.45, 30.5, "Europe/Kyiv", 8.4, 12.0, 2.5, 6.0, 4.0, 84.0, 0.85, 0.62, 30.0),
    # Athens (GR): mild wet winters, hot dry summers.
    "mediterranean": Climate(37.98, 23.7, "Europe/Athens", 18.5, 8.8, 3.5, 5.5, 2.5, 60.0, 0.68, 0.3, 24.0),
    # Stockholm (SE).
    "nordic": Climate(59.33, 18.07, "Europe/Stockholm", 7.2, 10.0, 2.0, 5.0, 4.0, 84.0, 0.88, 0.66, 30.0),
}
CLIMATE_CODES = {name: i for i, name in enumerate(CLIMATES)}


def build_weather(
    config: WeatherConfig, time: pd.DatetimeIndex, *, seed: int, base_dir: Path
) -> xr.Dataset:
    """Weather on the simulation time grid.

    Parameters
    ----------
    config
        Weather section of the scenario (source, climate, file, temperature offset).
    time
        Naive local start times of the steps (regular grid).
    seed
        Scenario seed; the same seed gives the same weather.
    base_dir
        Folder a relative ``config.file`` resolves against.

    Returns
    -------
    xr.Dataset
        ``temperature_c[time]`` [degC], ``ghi_w_m2[time]`` (interval mean) [W/m2],
        ``pv_factor[time]`` AC output per kWp of a south-facing array [kW/kWp]; attrs ``step_h``,
        ``climate``, ``latitude_deg``, ``longitude_deg``, ``tz``.
    """
    time = pd.DatetimeIndex(time)
    if len(time) == 0:
        raise InputError("time: the simulated window is empty")
    step_h = _step_h(time)
    climate = CLIMATES[config.climate]
    if config.source == "file":
        assert config.file is not None
        path = config.file if config.file.is_absolute() else Path(base_dir) / config.file
        temperature, ghi = read_weather_csv(path, time, step_h=step_h, tz=climate.tz)
    else:
        temperature, ghi = synthetic_weather(climate, time, step_h=step_h, seed=seed,
                                             climate_code=CLIMATE_CODES[config.climate])
    temperature = temperature + config.temperature_offset_c
    pv = pv_factor(climate, time, step_h, ghi, temperature)
    ds = xr.Dataset(
        {
            "temperature_c": ("time", temperature, {"units": "degC", "long_name": "outdoor air temperature"}),
            "ghi_w_m2": ("time", ghi, {"units": "W/m2", "long_name": "global horizontal irradiance"}),
            "pv_factor": ("time", pv, {"units": "1", "long_name": "PV AC output per kWp"}),
        },
        coords={"time": time.values},
        attrs={"step_h": step_h, "climate": config.climate, "latitude_deg": climate.latitude_deg,
               "longitude_deg": climate.longitude_deg, "tz": climate.tz, "source": config.source},
    )
    return validate(ds, {"temperature_c": ("time",), "ghi_w_m2": ("time",), "pv_factor": ("time",)},
                    stage="weather")


def _step_h(time: pd.DatetimeIndex) -> float:
    if len(time) < 2:
        return 1.0 if time.freq is None else time.freq.nanos / 3.6e12
    steps = np.diff(time.asi8)
    if np.any(steps != steps[0]) or steps[0] <= 0:
        raise InputError("time: the simulation grid must be regular and increasing")
    return float(steps[0]) / 3.6e12


# --- synthetic weather ----------------------------------------------------------------------

def synthetic_weather(
    climate: Climate, time: pd.DatetimeIndex, *, step_h: float, seed: int, climate_code: int
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic temperature [°C] and interval-mean GHI [W/m2] on ``time``."""
    from scipy.special import ndtr, ndtri

    rng = np.random.default_rng([seed, 0x57EA7E, climate_code])
    start = time[0].floor("D")
    hours = int(np.ceil((time[-1] - start) / pd.Timedelta(hours=1) + step_h)) + 2
    front = _ar1(rng, hours, climate.front_tau_h) * climate.front_sd_k
    cloud_latent = _ar1(rng, hours, climate.cloud_tau_h)
    grid_h = np.arange(hours, dtype=np.float64)
    t_h = (time - start) / pd.Timedelta(hours=1)
    t_h = np.asarray(t_h, dtype=np.float64)
    # Weather at the middle of the step represents the interval.
    t_mid = t_h + 0.5 * step_h
    doy = _day_of_year(time) + (t_mid - np.floor(t_mid)) / 24.0
    season = 0.5 * (1.0 - np.cos(2.0 * np.pi * (doy - 20.0) / 365.25))  # 0 mid-Jan, 1 mid-Jul
    cloud_mean = climate.cloud_winter + (climate.cloud_summer - climate.cloud_winter) * season
    # E[Phi(mu + s X)] = Phi(mu / sqrt(1 + s^2)) for X ~ N(0, 1): mu keeps the seasonal mean
    # cover; the spread s makes days mostly overcast or mostly clear, as observed.
    spread = 1.5
    mu = np.sqrt(1.0 + spread**2) * ndtri(np.clip(cloud_mean, 1e-3, 1 - 1e-3))
    cloud = ndtr(mu + spread * np.interp(t_mid, grid_h, cloud_latent))
    diurnal = climate.diurnal_winter_k + (climate.diurnal_summer_k - climate.diurnal_winter_k) * season
    hour = np.asarray(time.hour + time.minute / 60.0, dtype=np.float64) + 0.5 * step_h
    temperature = (
        climate.mean_c
        - climate.seasonal_amplitude_k * np.cos(2.0 * np.pi * (doy - 20.0) / 365.25)
        + diurnal * (1.0 - 0.6 * cloud) * np.cos(2.0 * np.pi * (hour - 15.0) / 24.0)
        + np.interp(t_mid, grid_h, front)
    )
    clear = clear_sky_ghi(climate, time, step_h)
    ghi = clear * (1.0 - 0.75 * cloud**3.4)
    return temperature, ghi


def _ar1(rng: np.random.Generator, n: int, tau_h: float) -> np.ndarray:
    """Stationary unit-variance AR(1) series at hourly steps with time constant ``tau_h``."""
    phi = np.exp(-1.0 / tau_h)
    z = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = z[0]
    scale = np.sqrt(1.0 - phi * phi)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + scale * z[i]
    return x


def _day_of_year(time: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(time.dayofyear, dtype=np.float64)


# --- solar geometry and PV ------------------------------------------------------------------

_SUBSTEPS = (1.0 / 6.0, 0.5, 5.0 / 6.0)  # interval average by three-point midpoint rule


def _solar(climate: Climate, time: pd.DatetimeIndex, step_h: float, fraction: float):
    """cos(zenith), cos(incidence on the array) and extraterrestrial normal irradiance."""
    offset = utc_offset_h(time, climate.tz)
    local_h = np.asarray(time.hour + time.minute / 60.0 + time.second / 3600.0, dtype=np.float64)
    utc_h = local_h + fraction * step_h - offset
    doy = _day_of_year(time) + np.floor(utc_h / 24.0)
    utc_h = np.mod(utc_h, 24.0)
    gamma = 2.0 * np.pi / 365.0 * (doy - 1.0 + (utc_h - 12.0) / 24.0)
    eqtime_min = 229.18 * (0.000075 + 0.001868 * np.cos(gamma) - 0.032077 * np.sin(gamma)
                           - 0.014615 * np.cos(2 * gamma) - 0.040849 * np.sin(2 * gamma))
    decl = (0.006918 - 0.399912 * np.cos(gamma) + 0.070257 * np.sin(gamma)
            - 0.006758 * np.cos(2 * gamma) + 0.000907 * np.sin(2 * gamma)
            - 0.002697 * np.cos(3 * gamma) + 0.00148 * np.sin(3 * gamma))
    solar_time_min = utc_h * 60.0 + eqtime_min + 4.0 * climate.longitude_deg
    hour_angle = np.deg2rad(solar_time_min / 4.0 - 180.0)
    lat = np.deg2rad(climate.latitude_deg)
    cos_zenith = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    tilt = np.deg2rad(_tilt_deg(climate))
    # South-facing array: incidence as on a horizontal plane at latitude (lat - tilt).
    cos_incidence = (np.sin(decl) * np.sin(lat - tilt)
                     + np.cos(decl) * np.cos(lat - tilt) * np.cos(hour_angle))
    extra = SOLAR_CONSTANT_W_M2 * (1.0 + 0.033 * np.cos(2.0 * np.pi * doy / 365.0))
    return cos_zenith, cos_incidence, extra


def _tilt_deg(climate: Climate) -> float:
    return float(np.clip(climate.latitude_deg - 15.0, 20.0, 40.0))


def clear_sky_ghi(climate: Climate, time: pd.DatetimeIndex, step_h: float) -> np.ndarray:
    """Interval-mean clear-sky GHI, Haurwitz model [W/m2]."""
    total = np.zeros(len(time))
    for fraction in _SUBSTEPS:
        cz, _, _ = _solar(climate, time, step_h, fraction)
        up = cz > 0.0
        total[up] += 1098.0 * cz[up] * np.exp(-0.057 / cz[up])
    return total / len(_SUBSTEPS)


def pv_factor(
    climate: Climate, time: pd.DatetimeIndex, step_h: float, ghi: np.ndarray, temperature: np.ndarray
) -> np.ndarray:
    """AC output of 1 kWp facing south at the climate's site [kW/kWp].

    GHI is split into beam and diffuse by Erbs et al. (1982) and transposed to the tilted plane
    with the isotropic sky model; zero whenever the sun is below the horizon.
    """
    tilt = np.deg2rad(_tilt_deg(climate))
    poa = np.zeros(len(time))
    for fraction in _SUBSTEPS:
        cz, ci, extra = _solar(climate, time, step_h, fraction)
        up = (cz > 0.0) & (ghi > 0.0)
        g = np.where(up, ghi, 0.0)
        kt = np.where(up, g / (extra * np.maximum(cz, 0.065)), 0.0)
        kt = np.clip(kt, 0.0, 1.0)
        kd = np.where(kt <= 0.22, 1.0 - 0.09 * kt,
                      np.where(kt <= 0.8,
                               0.9511 - 0.1604 * kt + 4.388 * kt**2 - 16.638 * kt**3 + 12.336 * kt**4,
                               0.165))
        diffuse = kd * g
        beam_normal = np.where(cz > 0.065, (g - diffuse) / np.maximum(cz, 0.065), 0.0)
        poa += (beam_normal * np.maximum(ci, 0.0) + diffuse * (1.0 + np.cos(tilt)) / 2.0
                + g * ALBEDO * (1.0 - np.cos(tilt)) / 2.0) * up
    poa /= len(_SUBSTEPS)
    cell_c = temperature + NOCT_RISE_K_PER_W_M2 * poa
    factor = poa / 1000.0 * (1.0 + TEMPERATURE_COEFFICIENT * (cell_c - 25.0)) * PERFORMANCE_RATIO
    return np.clip(factor, 0.0, 1.0)


# --- weather file ---------------------------------------------------------------------------

_AWARE = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


def read_weather_csv(
    path: Path, time: pd.DatetimeIndex, *, step_h: float, tz: str
) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate a weather CSV and interpolate it onto ``time``.

    Timestamps are local naive times, or carry a UTC offset (then converted to the climate's
    local time ``tz``). Raises `InputError` naming the file and the offending row (1-based file
    line numbers, header = line 1).
    """
    name = str(path)
    if not Path(path).is_file():
        raise InputError(f"weather.file: {name} not found")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"weather file {name}: unreadable CSV ({str(exc).splitlines()[0]})") from exc
    required = ("timestamp", "temperature_c", "ghi_w_m2")
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise InputError(f"weather file {name}: missing column(s) {', '.join(missing)}")
    if len(raw) < 2:
        raise InputError(f"weather file {name}: needs at least two rows")
    stamps = raw["timestamp"].str.strip()
    aware = stamps.str.contains(_AWARE)
    if aware.any() and not aware.all():
        row = int(np.flatnonzero(~aware.to_numpy())[0]) + 2
        raise InputError(f"weather file {name} row {row}: timestamp without UTC offset among "
                         "timestamps with offsets")
    if aware.all():
        ts = pd.to_datetime(stamps, errors="coerce", utc=True, format="ISO8601")
    else:
        ts = pd.to_datetime(stamps, errors="coerce", format="ISO8601")
    bad = ts.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        # repr: a quoted CSV field may hold line breaks, and the message stays one line
        raise InputError(f"weather file {name} row {row + 2}: unreadable timestamp "
                         f"{str(stamps.iloc[row])!r}")
    if aware.all():
        ts = ts.dt.tz_convert(tz).dt.tz_localize(None)
    values = {}
    for column in required[1:]:
        v = pd.to_numeric(raw[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(v)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"weather file {name} row {row + 2}: {column} '{raw[column].iloc[row]}' "
                             "is not a number")
        values[column] = v
    t_ns = ts.to_numpy().astype("datetime64[ns]").astype(np.int64)
    step = np.diff(t_ns)
    if np.any(step <= 0):
        row = int(np.flatnonzero(step <= 0)[0]) + 3
        raise InputError(f"weather file {name} row {row}: timestamp not after the previous row "
                         "(duplicate or out of order)")
    gap_h = step / 3.6e12
    if np.any(gap_h > MAX_FILE_GAP_H):
        row = int(np.flatnonzero(gap_h > MAX_FILE_GAP_H)[0]) + 3
        raise InputError(f"weather file {name} row {row}: gap of {gap_h.max():g} h before this row "
                         f"(at most {MAX_FILE_GAP_H:g} h allowed)")
    temperature, ghi = values["temperature_c"], values["ghi_w_m2"]
    if np.nanmedian(temperature) > 150.0:
        raise InputError(f"weather file {name}: temperature_c looks like Kelvin (median "
                         f"{np.median(temperature):.0f}); give degrees Celsius")
    for column, v, low, high in (("temperature_c", temperature, -60.0, 60.0),
                                 ("ghi_w_m2", ghi, -10.0, 1400.0)):
        out = (v < low) | (v > high)
        if out.any():
            row = int(np.flatnonzero(out)[0])
            raise InputError(f"weather file {name} row {row + 2}: {column} {v[row]:g} outside "
                             f"the plausible range [{low:g}, {high:g}]")
    if (t_ns[-1] - t_ns[0]) / 3.6e12 >= 24.0 and ghi.max() < 5.0:
        raise InputError(f"weather file {name}: ghi_w_m2 never exceeds {ghi.max():g}; "
                         "is it in kW/m2? Give W/m2")
    ghi = np.maximum(ghi, 0.0)
    file_step = np.median(step)
    # Values describe the step starting at the stamp; the window needs [time[0], end of last step].
    want_first = time[0].value
    want_last = time[-1].value
    if t_ns[0] > want_first or t_ns[-1] + file_step < want_last + step_h * 3.6e12:
        raise InputError(
            f"weather file {name}: covers {pd.Timestamp(t_ns[0])} to {pd.Timestamp(t_ns[-1])} "
            f"but the simulation needs {time[0]} to {time[-1]}"
        )
    target = time.asi8.astype(np.float64) + 0.5 * step_h * 3.6e12
    centres = t_ns.astype(np.float64) + 0.5 * file_step
    return (np.interp(target, centres, temperature), np.interp(target, centres, ghi))
