"""Slow, obviously-correct twins of `sim.kernels` (pure Python, and NumPy over customers).

The random stream is re-implemented with Python integers masked to 64 bits, so the draws are
exactly the kernel's; floating-point formulas are written in the same order, so results agree
to rounding of the transcendental functions (tests use rtol 1e-12). The kernel computes in
blocks of steps and passes; these twins deliberately keep the plain one-step-at-a-time loop
with every device's branch written out, as the obviously-correct statement of the model.
"""

from __future__ import annotations

import math

import numpy as np

# Only the layout is shared with the kernel: the columns of the parameter matrix and the stream
# numbers. Every constant of the model is owned below, so a changed constant in `sim.kernels`
# makes the twin tests fail until the twin is deliberately changed too.
from sim import kernels as k

MASK = (1 << 64) - 1
# SplitMix64 (Steele, Lea & Flood 2014, OOPSLA, "Fast splittable pseudorandom number
# generators"; Vigna's public-domain splitmix64.c): the golden-ratio increment and the two
# multipliers of the finaliser (Stafford's "Mix13").
GOLDEN = 0x9E3779B97F4A7C15
MIX1, MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
# Seed salt: the first 64 bits of the fractional part of √2, rounded to nearest (…908|1 → …909;
# SHA-512's truncated H0 is …908, FIPS 180-4 §5.3.5), derived here in integers.
_SQRT2_65 = math.isqrt(2 << 130) - (1 << 65)          # 65 fractional bits of √2
SEED_SALT = (_SQRT2_65 + 1) >> 1
INV_2_53, INV_2_32, INV_2_16 = 2.0**-53, 2.0**-32, 2.0**-16
SQRT3 = math.sqrt(3.0)                                # Irwin–Hall(4) scaled to unit variance
# Model constants: gridflex's own modelling choices (no external source; stated by value here,
# not imported, see above).
SHIFT_SD_H, MAX_SHIFT_H = 0.5, 1.5                    # customer time shift of the shape [h]
NOISE_TAU_MIN_H, NOISE_TAU_MAX_H = 0.5, 3.0           # AR(1) noise time constant range [h]
EV_PLUG_PROBABILITY = 0.75                            # [-] per day
EV_BATTERY_KWH = 75.0
EV_ENERGY_SD = 0.35                                   # lognormal sd of a session's energy [-]
HEAT_MIN_MODULATION = 0.3                             # smallest heat-pump output share [-]
DESIGN_TEMPERATURE_C = -12.0
# Heat pump: COP = η·T_sink / (T_sink − T_source) [K], the Carnot COP of heating (T in kelvin,
# 0 °C = 273.15 K by the SI definition) times the model's second-law efficiency η = 0.4, for
# a 35 °C (floor heating) sink.
SINK_TEMPERATURE_C = 35.0
CARNOT_EFFICIENCY = 0.4


# --- pure Python ----------------------------------------------------------------------------

def mix64(z: int) -> int:
    z &= MASK
    z = ((z ^ (z >> 30)) * MIX1) & MASK
    z = ((z ^ (z >> 27)) * MIX2) & MASK
    return z ^ (z >> 31)


def stream_key(seed: int, customer_id: int, stream: int) -> int:
    key = mix64((seed & MASK) ^ SEED_SALT)
    key = mix64(key ^ (customer_id & MASK))
    return mix64(key + stream * GOLDEN)


def draw_bits(key: int, counter: int) -> int:
    return mix64(key + ((counter + 1) & MASK) * GOLDEN)


def uniform(key: int, counter: int) -> float:
    return float(draw_bits(key, counter) >> 11) * INV_2_53


def normal(key: int, counter: int) -> float:
    b = draw_bits(key, counter)
    s = (float(b & 0xFFFF) + float((b >> 16) & 0xFFFF) + float((b >> 32) & 0xFFFF)
         + float(b >> 48) + 2.0)
    return (s * INV_2_16 - 2.0) * SQRT3


def heat_pump_cop(temperature_c: float) -> float:
    lift = max(SINK_TEMPERATURE_C - temperature_c, 5.0)
    return min(max(CARNOT_EFFICIENCY * (SINK_TEMPERATURE_C + 273.15) / lift, 1.5), 6.0)


def heating_schedule(hour: float) -> float:
    return 0.8 if (hour < 5.0 or hour >= 22.0) else (1.2 if hour < 9.0 else 1.0)


def cooling_schedule(hour: float) -> float:
    if hour < 7.0:
        return 0.5
    if hour < 13.0:
        return 0.8
    return 1.3 if hour < 23.0 else 0.8


def _traits(seed: int, cid: int, step_h: float, pad: int) -> dict[str, float]:
    key = stream_key(seed, cid, k.STREAM_TRAITS)
    raw = min(max(SHIFT_SD_H * normal(key, 0), -MAX_SHIFT_H), MAX_SHIFT_H) / step_h
    shift = min(max(int(np.rint(raw)), -pad), pad)
    return {
        "shift": shift,
        "contrast": 0.7 + 0.6 * uniform(key, 1),
        "balance_c": 14.0 + 3.0 * uniform(key, 2),
        "heat_tau_h": 6.0 + 24.0 * uniform(key, 3),
        "setpoint_c": 22.0 + 4.0 * uniform(key, 4),
        "cool_tau_h": 2.0 + 4.0 * uniform(key, 5),
        "arrival_mean_h": 16.5 + 3.0 * uniform(key, 6),
        "departure_mean_h": 6.5 + 2.0 * uniform(key, 7),
        "pv_derate": 0.8 + 0.2 * uniform(key, 8),
        "noise_tau_h": NOISE_TAU_MIN_H + (NOISE_TAU_MAX_H - NOISE_TAU_MIN_H) * uniform(key, 9),
        "noise0": normal(key, 10),
    }


def _day_draws(day_key: int, d: int, tr: dict, par) -> dict[str, float]:
    c = d * 16
    ev_day = par[k.EV_KWH_PER_DAY]
    water_day = par[k.WATER_KWH_PER_DAY] * math.exp(0.25 * normal(day_key, c + 4) - 0.03125)
    return {
        "plug": uniform(day_key, c) < EV_PLUG_PROBABILITY,
        "arrival_h": min(max(tr["arrival_mean_h"] + 1.2 * normal(day_key, c + 1), 12.0), 23.9),
        "energy": min(ev_day / EV_PLUG_PROBABILITY
                      * math.exp(EV_ENERGY_SD * normal(day_key, c + 2)
                                 - 0.5 * EV_ENERGY_SD * EV_ENERGY_SD), EV_BATTERY_KWH),
        "departure_h": min(max(tr["departure_mean_h"] + 0.7 * normal(day_key, c + 3), 5.0), 10.0),
        "draw1_h": 6.0 + 2.0 * uniform(day_key, c + 5),
        "draw2_h": 18.0 + 3.0 * uniform(day_key, c + 6),
        "draw1_kwh": 0.4 * water_day,
        "draw2_kwh": 0.6 * water_day,
    }


def simulate_customer_python(seed, cid, weights, base, pad, temperature, pv_factor, hour, day,
                             step_h, par):
    """One customer, step by step, in plain Python. Returns (p, q, flexible, pv) lists [kW]."""
    seed, cid = int(seed), int(cid)
    tr = _traits(seed, cid, step_h, pad)
    noise_key = stream_key(seed, cid, k.STREAM_STEP_NOISE)
    event_key = stream_key(seed, cid, k.STREAM_STEP_EVENTS)
    day_key = stream_key(seed, cid, k.STREAM_DAY)
    phi = math.exp(-step_h / tr["noise_tau_h"])
    innovation = math.sqrt(1.0 - phi * phi) * par[k.NOISE_SD]
    alpha_heat = 1.0 - math.exp(-step_h / tr["heat_tau_h"])
    alpha_cool = 1.0 - math.exp(-step_h / tr["cool_tau_h"])
    cop_ref = heat_pump_cop(7.0)
    heat_min = HEAT_MIN_MODULATION * par[k.HEAT_KW_PER_K] * (tr["balance_c"] - DESIGN_TEMPERATURE_C)
    cool_min = HEAT_MIN_MODULATION * par[k.COOL_KW_PER_K] * 8.0
    noise = par[k.NOISE_SD] * tr["noise0"]
    heat_air = cool_air = float(temperature[0])
    current = None
    today: dict = {}
    plugged, ev_left, leave_day, leave_h, water_left = False, 0.0, 0, 0.0, 0.0
    out_p, out_q, out_f, out_pv = [], [], [], []
    for t in range(len(temperature)):
        h, d, temp = float(hour[t]), int(day[t]), float(temperature[t])
        if d != current:
            current, today = d, _day_draws(day_key, d, tr, par)
        s = 0.0
        for j in range(base.shape[0]):
            s += weights[j] * base[j, pad + t + tr["shift"]]
        shape = max(1.0 + tr["contrast"] * (s - 1.0), 0.05)
        noise = phi * noise + innovation * normal(noise_key, t)
        b = draw_bits(event_key, t)
        u_spike = float(b >> 32) * INV_2_32
        u_size = float((b >> 11) & 0x1FFFFF) * (1.0 / 2097152.0)
        u_cycle = float(b & 0x7FF) * (1.0 / 2048.0)
        base_kw = (1.0 - par[k.SPIKE_SHARE]) * shape * max(1.0 + noise, 0.0)
        if u_spike * par[k.SPIKE_SIZE] < par[k.SPIKE_SHARE] * shape:
            base_kw += par[k.SPIKE_SIZE] * 2.0 * u_size
        base_kw *= par[k.MEAN_KW]
        heat = 0.0
        if par[k.HEAT_KW_PER_K] > 0.0:
            heat_air = (1.0 - alpha_heat) * heat_air + alpha_heat * temp
            deficit = tr["balance_c"] - heat_air
            if deficit > 0.0:
                heat = par[k.HEAT_KW_PER_K] * deficit * heating_schedule(h)
                if par[k.HEAT_PUMP] > 0.5:
                    heat *= cop_ref / heat_pump_cop(temp)
                    if heat < heat_min:
                        heat = heat_min if u_cycle * heat_min < heat else 0.0
        cool = 0.0
        if par[k.COOL_KW_PER_K] > 0.0:
            cool_air = (1.0 - alpha_cool) * cool_air + alpha_cool * temp
            excess = cool_air - tr["setpoint_c"]
            if excess > 0.0:
                cool = par[k.COOL_KW_PER_K] * excess * cooling_schedule(h)
                if cool < cool_min:
                    cool = cool_min if u_cycle * cool_min < cool else 0.0
        ev = 0.0
        if par[k.EV_KW] > 0.0:
            if plugged and (d > leave_day or (d == leave_day and h >= leave_h)):
                plugged, ev_left = False, 0.0
            if today["plug"] and h <= today["arrival_h"] < h + step_h:
                plugged = True
                ev_left = min(ev_left + today["energy"], EV_BATTERY_KWH)
                leave_day, leave_h = d + 1, today["departure_h"]
            if plugged and ev_left > 0.0:
                ev = min(par[k.EV_KW], ev_left / step_h)
                ev_left -= ev * step_h
        water = 0.0
        if par[k.WATER_KW] > 0.0:
            if h <= today["draw1_h"] < h + step_h:
                water_left += today["draw1_kwh"]
            if h <= today["draw2_h"] < h + step_h:
                water_left += today["draw2_kwh"]
            if water_left > 0.0:
                water = min(par[k.WATER_KW], water_left / step_h)
                water_left -= water * step_h
        flexible = heat + cool + ev + water
        gross = base_kw + flexible
        pv = par[k.PV_KWP] * float(pv_factor[t]) * tr["pv_derate"]
        out_p.append(gross - pv)
        out_q.append(gross * par[k.TAN_PHI])
        out_f.append(flexible)
        out_pv.append(pv)
    return out_p, out_q, out_f, out_pv


def simulate_python(seed, ids, weights, base, pad, temperature, pv_factor, hour, day, step_h,
                    params) -> tuple[np.ndarray, ...]:
    """All customers with `simulate_customer_python`; arrays ``[n, T]``."""
    rows = [simulate_customer_python(seed, ids[i], weights[i], base, pad, temperature, pv_factor,
                                     hour, day, step_h, params[i]) for i in range(len(ids))]
    return tuple(np.array([r[j] for r in rows]) for j in range(4))


# --- NumPy, vectorised over customers (the time recursion stays a loop) --------------------

def _mix64_np(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def _bits_np(keys: np.ndarray, counter) -> np.ndarray:
    step = (np.asarray(counter, dtype=np.uint64) + np.uint64(1)) * np.uint64(GOLDEN)
    return _mix64_np(keys + step)


def _normal_np(b: np.ndarray) -> np.ndarray:
    m = np.uint64(0xFFFF)
    s = ((b & m).astype(np.float64) + ((b >> np.uint64(16)) & m).astype(np.float64)
         + ((b >> np.uint64(32)) & m).astype(np.float64) + (b >> np.uint64(48)).astype(np.float64)
         + 2.0)
    return (s * INV_2_16 - 2.0) * SQRT3


def _uniform_np(b: np.ndarray) -> np.ndarray:
    return (b >> np.uint64(11)).astype(np.float64) * INV_2_53


def _keys_np(seed: int, ids: np.ndarray, stream: int) -> np.ndarray:
    return np.array([stream_key(int(seed), int(c), stream) for c in ids], dtype=np.uint64)


def simulate_numpy(seed, ids, weights, base, pad, temperature, pv_factor, hour, day, step_h,
                   params) -> tuple[np.ndarray, ...]:
    """Same model with NumPy arrays over customers, one Python iteration per time step."""
    with np.errstate(over="ignore"):
        return _simulate_numpy(seed, ids, weights, base, pad, temperature, pv_factor, hour, day,
                               step_h, params)


def _simulate_numpy(seed, ids, weights, base, pad, temperature, pv_factor, hour, day, step_h,
                    params):
    n, n_steps = len(ids), len(temperature)
    par = params.T
    tr = [_traits(int(seed), int(c), step_h, pad) for c in ids]
    g = {name: np.array([x[name] for x in tr]) for name in tr[0]}
    noise_keys = _keys_np(seed, ids, k.STREAM_STEP_NOISE)
    event_keys = _keys_np(seed, ids, k.STREAM_STEP_EVENTS)
    day_keys = _keys_np(seed, ids, k.STREAM_DAY)
    phi = np.exp(-step_h / g["noise_tau_h"])
    innovation = np.sqrt(1.0 - phi * phi) * par[k.NOISE_SD]
    alpha_heat = 1.0 - np.exp(-step_h / g["heat_tau_h"])
    alpha_cool = 1.0 - np.exp(-step_h / g["cool_tau_h"])
    cop_ref = heat_pump_cop(7.0)
    heat_min = HEAT_MIN_MODULATION * par[k.HEAT_KW_PER_K] * (g["balance_c"] - DESIGN_TEMPERATURE_C)
    cool_min = HEAT_MIN_MODULATION * par[k.COOL_KW_PER_K] * 8.0
    noise = par[k.NOISE_SD] * g["noise0"]
    heat_air = np.full(n, float(temperature[0]))
    cool_air = heat_air.copy()
    plugged = np.zeros(n, dtype=bool)
    ev_left = np.zeros(n)
    leave_day = np.zeros(n, dtype=np.int64)
    leave_h = np.zeros(n)
    water_left = np.zeros(n)
    cols = pad + g["shift"].astype(np.int64)
    out = [np.empty((n, n_steps)) for _ in range(4)]
    current = None
    for t in range(n_steps):
        h, d, temp = float(hour[t]), int(day[t]), float(temperature[t])
        if d != current:
            current = d
            c = d * 16
            u = [_bits_np(day_keys, c + j) for j in range(7)]
            plug = _uniform_np(u[0]) < EV_PLUG_PROBABILITY
            arrival = np.minimum(np.maximum(g["arrival_mean_h"] + 1.2 * _normal_np(u[1]), 12.0), 23.9)
            energy = np.minimum(par[k.EV_KWH_PER_DAY] / EV_PLUG_PROBABILITY
                                * np.exp(EV_ENERGY_SD * _normal_np(u[2])
                                         - 0.5 * EV_ENERGY_SD * EV_ENERGY_SD), EV_BATTERY_KWH)
            departure = np.minimum(np.maximum(g["departure_mean_h"] + 0.7 * _normal_np(u[3]), 5.0), 10.0)
            water_day = par[k.WATER_KWH_PER_DAY] * np.exp(0.25 * _normal_np(u[4]) - 0.03125)
            draw1_h = 6.0 + 2.0 * _uniform_np(u[5])
            draw2_h = 18.0 + 3.0 * _uniform_np(u[6])
        s = np.zeros(n)
        for j in range(base.shape[0]):
            s += weights[:, j] * base[j, cols + t]
        shape = np.maximum(1.0 + g["contrast"] * (s - 1.0), 0.05)
        noise = phi * noise + innovation * _normal_np(_bits_np(noise_keys, t))
        b = _bits_np(event_keys, t)
        u_spike = (b >> np.uint64(32)).astype(np.float64) * INV_2_32
        u_size = ((b >> np.uint64(11)) & np.uint64(0x1FFFFF)).astype(np.float64) * (1.0 / 2097152.0)
        u_cycle = (b & np.uint64(0x7FF)).astype(np.float64) * (1.0 / 2048.0)
        base_kw = (1.0 - par[k.SPIKE_SHARE]) * shape * np.maximum(1.0 + noise, 0.0)
        spike = u_spike * par[k.SPIKE_SIZE] < par[k.SPIKE_SHARE] * shape
        base_kw = np.where(spike, base_kw + par[k.SPIKE_SIZE] * 2.0 * u_size, base_kw)
        base_kw = base_kw * par[k.MEAN_KW]

        heating = par[k.HEAT_KW_PER_K] > 0.0
        heat_air = np.where(heating, (1.0 - alpha_heat) * heat_air + alpha_heat * temp, heat_air)
        deficit = g["balance_c"] - heat_air
        heat = np.where(heating & (deficit > 0.0),
                        par[k.HEAT_KW_PER_K] * deficit * heating_schedule(h), 0.0)
        hp = heating & (deficit > 0.0) & (par[k.HEAT_PUMP] > 0.5)
        heat = np.where(hp, heat * (cop_ref / heat_pump_cop(temp)), heat)
        cycling = hp & (heat < heat_min)
        heat = np.where(cycling, np.where(u_cycle * heat_min < heat, heat_min, 0.0), heat)

        cooling = par[k.COOL_KW_PER_K] > 0.0
        cool_air = np.where(cooling, (1.0 - alpha_cool) * cool_air + alpha_cool * temp, cool_air)
        excess = cool_air - g["setpoint_c"]
        cool = np.where(cooling & (excess > 0.0),
                        par[k.COOL_KW_PER_K] * excess * cooling_schedule(h), 0.0)
        cycling = cooling & (excess > 0.0) & (cool < cool_min)
        cool = np.where(cycling, np.where(u_cycle * cool_min < cool, cool_min, 0.0), cool)

        has_ev = par[k.EV_KW] > 0.0
        leave = has_ev & plugged & ((d > leave_day) | ((d == leave_day) & (h >= leave_h)))
        plugged = plugged & ~leave
        ev_left = np.where(leave, 0.0, ev_left)
        arrive = has_ev & plug & (h <= arrival) & (arrival < h + step_h)
        plugged = plugged | arrive
        ev_left = np.where(arrive, np.minimum(ev_left + energy, EV_BATTERY_KWH), ev_left)
        leave_day = np.where(arrive, d + 1, leave_day)
        leave_h = np.where(arrive, departure, leave_h)
        charging = has_ev & plugged & (ev_left > 0.0)
        ev = np.where(charging, np.minimum(par[k.EV_KW], ev_left / step_h), 0.0)
        ev_left = ev_left - ev * step_h

        has_water = par[k.WATER_KW] > 0.0
        water_left = water_left + np.where(has_water & (h <= draw1_h) & (draw1_h < h + step_h),
                                           0.4 * water_day, 0.0)
        water_left = water_left + np.where(has_water & (h <= draw2_h) & (draw2_h < h + step_h),
                                           0.6 * water_day, 0.0)
        water = np.where(has_water & (water_left > 0.0),
                         np.minimum(par[k.WATER_KW], water_left / step_h), 0.0)
        water_left = water_left - water * step_h

        flexible = heat + cool + ev + water
        gross = base_kw + flexible
        pv = par[k.PV_KWP] * float(pv_factor[t]) * g["pv_derate"]
        out[0][:, t] = gross - pv
        out[1][:, t] = gross * par[k.TAN_PHI]
        out[2][:, t] = flexible
        out[3][:, t] = pv
    return tuple(out)


def add_rows_by_group(groups: np.ndarray, rows: np.ndarray, total: np.ndarray) -> None:
    """Twin of `sim.kernels.add_rows_by_group`: NumPy's unbuffered in-place add, row by row."""
    np.add.at(total, groups, rows)
