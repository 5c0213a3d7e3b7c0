"""Numba kernels of the per-customer load simulator (pure array functions, no objects).

Randomness is counter-based: every draw is ``splitmix64(key + (counter + 1)·γ)`` with a key
derived from (seed, customer id, stream) — Steele, Lea & Flood (2014), "Fast splittable
pseudorandom number generators", OOPSLA; the same idea as Philox/Threefry in Salmon et al.
(2011), "Parallel random numbers: as easy as 1, 2, 3". A customer's numbers therefore depend
only on (seed, customer id, step or day), never on the chunk it is simulated in or the thread
that runs it, which makes results bitwise identical across chunkings and thread counts.

Each kernel has a slow twin in ``tests/reference/profiles.py``.
"""

from __future__ import annotations

import numba
import numpy as np

jit = numba.njit(cache=True, nogil=True, error_model="numpy")
parallel_jit = numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
SEED_SALT = np.uint64(0x6A09E667F3BCC909)
INV_2_53 = 1.0 / 9007199254740992.0
INV_2_32 = 1.0 / 4294967296.0
INV_2_16 = 1.0 / 65536.0
SQRT3 = 1.7320508075688772

# Random streams (distinct keys per purpose so draws never collide).
STREAM_TRAITS, STREAM_STEP_NOISE, STREAM_STEP_EVENTS, STREAM_DAY, STREAM_MEMBER = 1, 2, 3, 4, 5

# Columns of the customer parameter matrix `params[customer, column]`.
MEAN_KW = 0          # mean base (appliance) load, annual base energy / 8760 [kW]
HEAT_KW_PER_K = 1    # electric heating load per K below the balance point at 7 °C COP [kW/K]
HEAT_PUMP = 2        # 1: heating by heat pump (COP varies with outdoor air), 0: resistive
COOL_KW_PER_K = 3    # air-conditioning load per K above the set point [kW/K]
EV_KW = 4            # EV charger power, 0 without EV [kW]
EV_KWH_PER_DAY = 5   # mean EV charging energy per day [kWh/d]
WATER_KW = 6         # water heater element power, 0 without [kW]
WATER_KWH_PER_DAY = 7  # mean water-heating energy per day [kWh/d]
PV_KWP = 8           # PV array peak power [kWp]
TAN_PHI = 9          # reactive/active ratio of the gross load, tan(acos(power factor)) [-]
NOISE_SD = 10        # standard deviation of the multiplicative AR(1) noise of the base load [-]
SPIKE_SHARE = 11     # share of base energy drawn as appliance spikes [-]
SPIKE_SIZE = 12      # mean spike height in multiples of the mean base load [-]
PARAM_COUNT = 13

# Behaviour constants (documented in the twin and the report).
SHIFT_SD_H = 0.5           # sd of a customer's time shift of the base shape [h]
MAX_SHIFT_H = 1.5
NOISE_TAU_MIN_H, NOISE_TAU_MAX_H = 0.5, 3.0
EV_PLUG_PROBABILITY = 0.75
EV_BATTERY_KWH = 75.0
EV_ENERGY_SD = 0.35        # lognormal sd of a session's energy [-]
HEAT_MIN_MODULATION = 0.3  # smallest continuous heat-pump output as a share of its design load
DESIGN_TEMPERATURE_C = -12.0
SINK_TEMPERATURE_C = 35.0
CARNOT_EFFICIENCY = 0.4


@jit
def mix64(z):
    """splitmix64 finaliser of a uint64."""
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


@jit
def stream_key(seed, customer_id, stream):
    """Key of the random stream ``stream`` of one customer (uint64)."""
    k = mix64(np.uint64(seed) ^ SEED_SALT)
    k = mix64(k ^ np.uint64(customer_id))
    return mix64(k + np.uint64(stream) * GOLDEN)


@jit
def draw_bits(key, counter):
    """64 random bits number ``counter`` of a stream."""
    return mix64(key + (np.uint64(counter) + np.uint64(1)) * GOLDEN)


@jit
def bits_uniform(bits):
    """Uniform in [0, 1) from the top 53 bits."""
    # Through int64: a signed conversion is one instruction, an unsigned one is a branch.
    return float(np.int64(bits >> np.uint64(11))) * INV_2_53


@jit
def bits_normal(bits):
    """Approximately standard normal: Irwin–Hall sum of four 16-bit uniforms, unit variance."""
    mask = np.uint64(0xFFFF)
    total = ((bits & mask) + ((bits >> np.uint64(16)) & mask)
             + ((bits >> np.uint64(32)) & mask) + (bits >> np.uint64(48)))
    return ((float(np.int64(total)) + 2.0) * INV_2_16 - 2.0) * SQRT3


@jit
def uniform(key, counter):
    return bits_uniform(draw_bits(key, counter))


@jit
def normal(key, counter):
    return bits_normal(draw_bits(key, counter))


@jit
def heat_pump_cop(temperature_c):
    """Air-source heat pump COP: Carnot fraction for a 35 °C sink, clipped to [1.5, 6] [-]."""
    lift = max(SINK_TEMPERATURE_C - temperature_c, 5.0)
    return min(max(CARNOT_EFFICIENCY * (SINK_TEMPERATURE_C + 273.15) / lift, 1.5), 6.0)


@jit
def heating_schedule(hour):
    """Thermostat programme: night setback, morning boost [-]."""
    if hour < 5.0 or hour >= 22.0:
        return 0.8
    if hour < 9.0:
        return 1.2
    return 1.0


@jit
def cooling_schedule(hour):
    """Occupancy weighting of air conditioning: afternoon and evening use [-]."""
    if hour < 7.0:
        return 0.5
    if hour < 13.0:
        return 0.8
    if hour < 23.0:
        return 1.3
    return 0.8


@jit
def time_drivers(temperature, hour):
    """Per-step drivers shared by all customers.

    Returns
    -------
    cop_ratio : [T] COP at 7 °C over COP now (electric per unit of heat, relative) [-]
    heat_schedule, cool_schedule : [T] thermostat and occupancy factors [-]
    """
    n = temperature.shape[0]
    cop_ratio = np.empty(n)
    heat = np.empty(n)
    cool = np.empty(n)
    cop_ref = heat_pump_cop(7.0)
    for t in range(n):
        cop_ratio[t] = cop_ref / heat_pump_cop(temperature[t])
        heat[t] = heating_schedule(hour[t])
        cool[t] = cooling_schedule(hour[t])
    return cop_ratio, heat, cool


@jit
def simulate_customer(seed, customer_id, weights, base, pad, shift_limit, temperature,
                      pv_factor, hour, day, cop_ratio, heat_schedule, cool_schedule, step_h, params,
                      p_out, q_out, flex_out, pv_out):
    """Simulate one customer over all steps, writing into the 1-D output rows.

    Parameters
    ----------
    weights : [member] weights of the member base shapes [-]
    base : [member, pad + T + pad] base shapes (mean 1), padded for time shifts [-]
    temperature, pv_factor, hour : [T] outdoor air [°C], PV per kWp [kW/kWp], local hour [h]
    day : [T] local day number (int64) keying the per-day draws
    cop_ratio, heat_schedule, cool_schedule : [T] from `time_drivers`
    params : [PARAM_COUNT] the customer's parameter row (columns above)
    """
    n_steps = temperature.shape[0]
    n_member = base.shape[0]
    traits = stream_key(seed, customer_id, STREAM_TRAITS)
    noise_key = stream_key(seed, customer_id, STREAM_STEP_NOISE)
    event_key = stream_key(seed, customer_id, STREAM_STEP_EVENTS)
    day_key = stream_key(seed, customer_id, STREAM_DAY)

    # Individual traits: time shift, shape contrast, building and device habits.
    shift = int(np.rint(min(max(SHIFT_SD_H * normal(traits, 0), -MAX_SHIFT_H), MAX_SHIFT_H) / step_h))
    shift = min(max(shift, -shift_limit), shift_limit)
    contrast = 0.7 + 0.6 * uniform(traits, 1)
    balance_c = 14.0 + 3.0 * uniform(traits, 2)
    heat_tau_h = 6.0 + 24.0 * uniform(traits, 3)
    setpoint_c = 22.0 + 4.0 * uniform(traits, 4)
    cool_tau_h = 2.0 + 4.0 * uniform(traits, 5)
    arrival_mean_h = 16.5 + 3.0 * uniform(traits, 6)
    departure_mean_h = 6.5 + 2.0 * uniform(traits, 7)
    pv_derate = 0.8 + 0.2 * uniform(traits, 8)
    noise_tau_h = NOISE_TAU_MIN_H + (NOISE_TAU_MAX_H - NOISE_TAU_MIN_H) * uniform(traits, 9)

    mean_kw = params[MEAN_KW]
    heat_k = params[HEAT_KW_PER_K]
    is_heat_pump = params[HEAT_PUMP] > 0.5
    cool_k = params[COOL_KW_PER_K]
    ev_kw = params[EV_KW]
    ev_kwh_day = params[EV_KWH_PER_DAY]
    water_kw = params[WATER_KW]
    water_kwh_day = params[WATER_KWH_PER_DAY]
    pv_kwp = params[PV_KWP]
    tan_phi = params[TAN_PHI]
    noise_sd = params[NOISE_SD]
    spike_share = params[SPIKE_SHARE]
    spike_size = params[SPIKE_SIZE]

    phi = np.exp(-step_h / noise_tau_h)
    innovation = np.sqrt(1.0 - phi * phi) * noise_sd
    alpha_heat = 1.0 - np.exp(-step_h / heat_tau_h)
    alpha_cool = 1.0 - np.exp(-step_h / cool_tau_h)
    heat_min_kw = HEAT_MIN_MODULATION * heat_k * (balance_c - DESIGN_TEMPERATURE_C)
    cool_min_kw = HEAT_MIN_MODULATION * cool_k * 8.0

    # Most customers follow one member shape: skip the zero weights in the inner loop.
    used = np.zeros(n_member, dtype=np.int64)
    n_used = 0
    for j in range(n_member):
        if weights[j] != 0.0:
            used[n_used] = j
            n_used += 1
    if n_used == 0:
        n_used = 1

    noise = noise_sd * normal(traits, 10)  # stationary start
    heat_air = temperature[0]
    cool_air = temperature[0]
    current_day = np.int64(-(2**62))
    ev_plugged = False
    ev_remaining = 0.0
    ev_leave_day = np.int64(0)
    ev_leave_h = 0.0
    today_plug = False
    today_arrival_h = 0.0
    today_energy = 0.0
    today_departure_h = 0.0
    water_remaining = 0.0
    draw1_h = 0.0
    draw1_kwh = 0.0
    draw2_h = 0.0
    draw2_kwh = 0.0

    for t in range(n_steps):
        h = hour[t]
        d = day[t]
        if d != current_day:
            current_day = d
            c = d * 16
            today_plug = uniform(day_key, c) < EV_PLUG_PROBABILITY
            today_arrival_h = min(max(arrival_mean_h + 1.2 * normal(day_key, c + 1), 12.0), 23.9)
            today_energy = min(ev_kwh_day / EV_PLUG_PROBABILITY
                               * np.exp(EV_ENERGY_SD * normal(day_key, c + 2)
                                        - 0.5 * EV_ENERGY_SD * EV_ENERGY_SD), EV_BATTERY_KWH)
            today_departure_h = min(max(departure_mean_h + 0.7 * normal(day_key, c + 3), 5.0), 10.0)
            water_day = water_kwh_day * np.exp(0.25 * normal(day_key, c + 4) - 0.03125)
            draw1_h = 6.0 + 2.0 * uniform(day_key, c + 5)
            draw2_h = 18.0 + 3.0 * uniform(day_key, c + 6)
            draw1_kwh = 0.4 * water_day
            draw2_kwh = 0.6 * water_day

        # Base (appliance) load: shifted, contrast-scaled member shape × AR(1) noise + spikes.
        col = pad + t + shift
        shape = weights[used[0]] * base[used[0], col]
        for j in range(1, n_used):
            shape += weights[used[j]] * base[used[j], col]
        shape = max(1.0 + contrast * (shape - 1.0), 0.05)
        noise = phi * noise + innovation * normal(noise_key, t)
        events = draw_bits(event_key, t)
        u_spike = float(np.int64(events >> np.uint64(32))) * INV_2_32
        u_size = float(np.int64((events >> np.uint64(11)) & np.uint64(0x1FFFFF))) * (1.0 / 2097152.0)
        u_cycle = float(np.int64(events & np.uint64(0x7FF))) * (1.0 / 2048.0)
        base_kw = (1.0 - spike_share) * shape * max(1.0 + noise, 0.0)
        if u_spike * spike_size < spike_share * shape:
            base_kw += spike_size * 2.0 * u_size
        base_kw *= mean_kw

        # Space heating: heat demand follows the building's lagged air temperature.
        heat_kw = 0.0
        if heat_k > 0.0:
            heat_air += alpha_heat * (temperature[t] - heat_air)
            deficit = balance_c - heat_air
            if deficit > 0.0:
                heat_kw = heat_k * deficit * heat_schedule[t]
                if is_heat_pump:
                    heat_kw *= cop_ratio[t]
                    # Below minimum modulation the compressor cycles on/off (same mean).
                    if heat_kw < heat_min_kw:
                        heat_kw = heat_min_kw if u_cycle * heat_min_kw < heat_kw else 0.0
        cool_kw = 0.0
        if cool_k > 0.0:
            cool_air += alpha_cool * (temperature[t] - cool_air)
            excess = cool_air - setpoint_c
            if excess > 0.0:
                cool_kw = cool_k * excess * cool_schedule[t]
                if cool_kw < cool_min_kw:
                    cool_kw = cool_min_kw if u_cycle * cool_min_kw < cool_kw else 0.0

        # EV: plug in on arrival, charge at full power until full or departure.
        ev_load = 0.0
        if ev_kw > 0.0:
            if ev_plugged and (d > ev_leave_day or (d == ev_leave_day and h >= ev_leave_h)):
                ev_plugged = False
                ev_remaining = 0.0
            if today_plug and h <= today_arrival_h < h + step_h:
                ev_plugged = True
                ev_remaining = min(ev_remaining + today_energy, EV_BATTERY_KWH)
                ev_leave_day = d + 1
                ev_leave_h = today_departure_h
            if ev_plugged and ev_remaining > 0.0:
                ev_load = min(ev_kw, ev_remaining / step_h)
                ev_remaining -= ev_load * step_h

        # Water heater: reheats after the morning and evening draws.
        water_load = 0.0
        if water_kw > 0.0:
            if h <= draw1_h < h + step_h:
                water_remaining += draw1_kwh
            if h <= draw2_h < h + step_h:
                water_remaining += draw2_kwh
            if water_remaining > 0.0:
                water_load = min(water_kw, water_remaining / step_h)
                water_remaining -= water_load * step_h

        flexible = heat_kw + cool_kw + ev_load + water_load
        gross = base_kw + flexible
        pv = pv_kwp * pv_factor[t] * pv_derate
        p_out[t] = gross - pv
        q_out[t] = gross * tan_phi
        flex_out[t] = flexible
        pv_out[t] = pv


@parallel_jit
def simulate_customers(seed, customer_ids, weights, base, pad, temperature, pv_factor, hour,
                       day, step_h, params, p_out, q_out, flex_out, pv_out):
    """Simulate many customers in parallel (one `simulate_customer` per row).

    Parameters
    ----------
    seed : scenario seed (uint64)
    customer_ids : [n] int64 customer ids keying the random streams
    weights : [n, member] base-shape weights
    base : [member, pad + T + pad] padded base shapes
    params : [n, PARAM_COUNT]
    p_out, q_out, flex_out, pv_out : [n, T] outputs [kW], [kvar], [kW], [kW]
    """
    cop_ratio, heat_schedule, cool_schedule = time_drivers(temperature, hour)
    for i in numba.prange(customer_ids.shape[0]):
        simulate_customer(seed, customer_ids[i], weights[i], base, pad, pad, temperature,
                          pv_factor, hour, day, cop_ratio, heat_schedule, cool_schedule, step_h,
                          params[i], p_out[i], q_out[i], flex_out[i], pv_out[i])
