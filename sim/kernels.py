"""Numba kernels of the per-customer load simulator (pure array functions, no objects).

Randomness is counter-based: every draw is ``splitmix64(key + (counter + 1)·γ)`` with a key
derived from (seed, customer id, stream) — Steele, Lea & Flood (2014), "Fast splittable
pseudorandom number generators", OOPSLA; the same idea as Philox/Threefry in Salmon et al.
(2011), "Parallel random numbers: as easy as 1, 2, 3". A customer's numbers therefore depend
only on (seed, customer id, step or day), never on the chunk it is simulated in or the thread
that runs it, which makes results bitwise identical across chunkings and thread counts.

Speed: `simulate_customer` splits each customer's year into blocks of steps and each block
into passes — the stateless draws and shapes (vectorised), the float recursions together in one
loop (so their latencies overlap), branch-free heating and cooling (vectorised), the EV and
hot-water state machines (only their active steps, only for customers who have them), the
outputs (vectorised) — with every step's floating-point operations in the twins' order
(multiply-adds fused, see `jit`), so the results equal a plain step-by-step loop's to rounding
and do not depend on the block size.
Figures and how to reproduce them: ``benchmarks/bench_profiles.py``.

Each kernel has a slow twin in ``tests/reference/profiles.py``.
"""

from __future__ import annotations

import numba
import numpy as np

# "contract" lets LLVM fuse a multiply and an add into one FMA instruction (one rounding instead
# of two): the AR(1) and building-air recursions then cost one FMA latency per step. Results stay
# bitwise independent of chunking and threads (every customer runs the same machine code) and
# match the twins to `tests/sim/test_kernels.py`'s TWIN_RTOL.
jit = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
parallel_jit = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"},
                          parallel=True)

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

# Steps per block of `simulate_customer` (7 scratch rows of 8 kB stay in L1/L2 cache).
BLOCK_STEPS = 1024


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
    # The sum is < 2**18: an int32 conversion is exact and, unlike int64, vectorises on AVX2.
    return ((float(np.int32(total)) + 2.0) * INV_2_16 - 2.0) * SQRT3


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


# Columns of the per-day draws `day_draws` writes.
DAY_PLUG, DAY_ARRIVAL_H, DAY_ENERGY, DAY_DEPARTURE_H, DAY_DRAW1_H, DAY_DRAW2_H = 0, 1, 2, 3, 4, 5
DAY_DRAW1_KWH, DAY_DRAW2_KWH = 6, 7
DAY_COLUMNS = 8


@jit
def day_draws(day_key, first_day, arrival_mean_h, departure_mean_h, ev_kwh_day, water_kwh_day,
              out):
    """One customer's EV and hot-water draws of days ``first_day ..`` into ``out[day, column]``.

    Columns: plug-in today (1/0), arrival [h], session energy [kWh], next morning's departure
    [h], morning and evening hot-water draw times [h] and energies [kWh].
    """
    for j in range(out.shape[0]):
        c = (first_day + j) * 16
        out[j, DAY_PLUG] = 1.0 if uniform(day_key, c) < EV_PLUG_PROBABILITY else 0.0
        out[j, DAY_ARRIVAL_H] = min(max(arrival_mean_h + 1.2 * normal(day_key, c + 1), 12.0), 23.9)
        out[j, DAY_ENERGY] = min(ev_kwh_day / EV_PLUG_PROBABILITY
                                 * np.exp(EV_ENERGY_SD * normal(day_key, c + 2)
                                          - 0.5 * EV_ENERGY_SD * EV_ENERGY_SD), EV_BATTERY_KWH)
        out[j, DAY_DEPARTURE_H] = min(max(departure_mean_h + 0.7 * normal(day_key, c + 3), 5.0),
                                      10.0)
        water_day = water_kwh_day * np.exp(0.25 * normal(day_key, c + 4) - 0.03125)
        out[j, DAY_DRAW1_H] = 6.0 + 2.0 * uniform(day_key, c + 5)
        out[j, DAY_DRAW2_H] = 18.0 + 3.0 * uniform(day_key, c + 6)
        out[j, DAY_DRAW1_KWH] = 0.4 * water_day
        out[j, DAY_DRAW2_KWH] = 0.6 * water_day


@jit
def day_starts(day):
    """First step of each local day ``day[0] ..`` [int64, days + 1]; the last entry is T.

    A day without steps (none in a consecutive index) starts where the next one does.
    """
    n_steps = day.shape[0]
    n_days = day[n_steps - 1] - day[0] + 1 if n_steps else 0
    start = np.full(n_days + 1, -1, dtype=np.int64)
    start[n_days] = n_steps
    for t in range(n_steps - 1, -1, -1):
        start[day[t] - day[0]] = t
    for j in range(n_days - 1, -1, -1):
        if start[j] < 0:
            start[j] = start[j + 1]
    return start


@jit
def clock_step(hour, lo, hi, clock_h, step_h):
    """The step in ``lo .. hi-1`` whose interval ``[h, h + step_h)`` holds ``clock_h``, or -1.

    The steps of one day, whose local hours rise by ``step_h`` except at a DST change (one hour
    skipped or repeated, before 04:00). The scan starts one hour plus a step before the even-clock
    estimate and is moved back until the step before it lies wholly before ``clock_h``, so it
    finds the first match a full scan of the day would (the test is the twins' ``h <= c < h + Δ``).
    """
    if hi <= lo:
        return -1
    s = lo + int((clock_h - hour[lo]) / step_h) - int(1.0 / step_h) - 1
    s = min(max(s, lo), hi - 1)
    while s > lo and hour[s - 1] + step_h > clock_h:
        s -= 1
    while s < hi:
        h = hour[s]
        if h <= clock_h < h + step_h:
            return s
        s += 1
    return -1


@jit
def block_draws(noise_key, event_key, t0, n, innovation, spike_size, spike_share, contrast,
                heat_min_kw, cool_min_kw, shape, noise_step, spike_kw, heat_cycle, cool_cycle):
    """Everything of steps ``t0 .. t0+n-1`` that does not depend on the customer's state.

    On entry ``shape[:n]`` holds the mixed member shape; on exit it holds the base load without
    noise and spikes ``(1 - spike share) · contrast-scaled shape`` [-]. Also writes the AR(1)
    innovation ``noise_step`` [-], the spike load ``spike_kw`` (0 without a spike) [-] and the
    compressor-cycling thresholds ``u · minimum load`` of heating and cooling [kW].

    A loop without state or branches, so LLVM vectorises it.
    """
    low_mask = np.uint64(0x1FFFFF)
    cycle_mask = np.uint64(0x7FF)
    for i in range(n):
        t = t0 + i
        s = max(1.0 + contrast * (shape[i] - 1.0), 0.05)
        noise_step[i] = innovation * normal(noise_key, t)
        events = draw_bits(event_key, t)
        # Integer-to-float conversions through int32 (exact here: the top 32 bits as two
        # 16-bit halves, 21 and 11 bits), which AVX2 vectorises and int64 it does not.
        spike_hi = float(np.int32(events >> np.uint64(48)))
        spike_lo = float(np.int32((events >> np.uint64(32)) & np.uint64(0xFFFF)))
        u_spike = (spike_hi * 65536.0 + spike_lo) * INV_2_32
        u_size = float(np.int32((events >> np.uint64(11)) & low_mask)) * (1.0 / 2097152.0)
        u_cycle = float(np.int32(events & cycle_mask)) * (1.0 / 2048.0)
        shape[i] = (1.0 - spike_share) * s
        spike_kw[i] = spike_size * 2.0 * u_size if u_spike * spike_size < spike_share * s else 0.0
        heat_cycle[i] = u_cycle * heat_min_kw
        cool_cycle[i] = u_cycle * cool_min_kw


@jit
def simulate_customer(seed, customer_id, weights, base, pad, shift_limit, temperature,
                      pv_factor, hour, day, day_start, cop_ratio, heat_schedule, cool_schedule,
                      step_h, params, p_out, q_out, flex_out, pv_out):
    """Simulate one customer over all steps, writing into the 1-D output rows.

    The per-day draws come first (`day_draws`); then the steps run in blocks of `BLOCK_STEPS`:
    a vectorised pass draws the per-step random numbers and forms the shape (`block_draws`),
    one scalar loop runs the float recursions (noise, building air for heating and for cooling),
    branch-free loops add heating and cooling, the EV battery and the hot-water tank run only
    their charging and reheating steps (a device the customer lacks costs nothing), and a
    vectorised pass writes the four outputs.
    Each step's floating-point operations and their order are those of the plain step-by-step
    loop of the twins (``tests/reference/profiles.py``), so results do not depend on the block
    size.

    Parameters
    ----------
    weights : [member] weights of the member base shapes [-]
    base : [member, pad + T + pad] base shapes (mean 1), padded for time shifts [-]
    temperature, pv_factor, hour : [T] outdoor air [°C], PV per kWp [kW/kWp], local hour [h]
    day : [T] local day number (int64, consecutive) keying the per-day draws
    day_start : [days + 1] first step of each day, from `day_starts`
    cop_ratio, heat_schedule, cool_schedule : [T] from `time_drivers`
    params : [PARAM_COUNT] the customer's parameter row (columns above)
    """
    n_steps = temperature.shape[0]
    if n_steps == 0:
        return
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
    water_kw = params[WATER_KW]
    pv_kwp = params[PV_KWP]
    tan_phi = params[TAN_PHI]
    noise_sd = params[NOISE_SD]

    phi = np.exp(-step_h / noise_tau_h)
    innovation = np.sqrt(1.0 - phi * phi) * noise_sd
    alpha_heat = 1.0 - np.exp(-step_h / heat_tau_h)
    alpha_cool = 1.0 - np.exp(-step_h / cool_tau_h)
    keep_heat = 1.0 - alpha_heat
    keep_cool = 1.0 - alpha_cool
    heat_min_kw = HEAT_MIN_MODULATION * heat_k * (balance_c - DESIGN_TEMPERATURE_C)
    cool_min_kw = HEAT_MIN_MODULATION * cool_k * 8.0

    # Most customers follow one member shape: skip the zero weights.
    used = np.zeros(n_member, dtype=np.int64)
    n_used = 0
    for j in range(n_member):
        if weights[j] != 0.0:
            used[n_used] = j
            n_used += 1
    if n_used == 0:
        n_used = 1

    first_day = day[0]
    days = np.empty((day[n_steps - 1] - first_day + 1, DAY_COLUMNS))
    if ev_kw > 0.0 or water_kw > 0.0:
        day_draws(day_key, first_day, arrival_mean_h, departure_mean_h, params[EV_KWH_PER_DAY],
                  params[WATER_KWH_PER_DAY], days)

    shape = np.empty(BLOCK_STEPS)
    noise_step = np.empty(BLOCK_STEPS)
    spike_kw = np.empty(BLOCK_STEPS)
    heat_cycle = np.empty(BLOCK_STEPS)
    cool_cycle = np.empty(BLOCK_STEPS)
    base_kw = np.empty(BLOCK_STEPS)
    heat_air_block = np.empty(BLOCK_STEPS)
    cool_air_block = np.empty(BLOCK_STEPS)
    flexible = np.empty(BLOCK_STEPS)

    noise = noise_sd * normal(traits, 10)  # stationary start
    heat_air = temperature[0]
    cool_air = temperature[0]
    # EV: the step each session starts (-1: no session that day), then one session at a time.
    arrival = np.full(days.shape[0], -1, dtype=np.int64)
    if ev_kw > 0.0:
        for j in range(days.shape[0]):
            if days[j, DAY_PLUG] > 0.5:
                arrival[j] = clock_step(hour, day_start[j], day_start[j + 1],
                                        days[j, DAY_ARRIVAL_H], step_h)
    next_session = 0
    ev_charging = False
    ev_step = np.int64(0)
    ev_remaining = 0.0
    ev_leave_day = np.int64(0)
    ev_leave_h = 0.0
    # Water heater: the steps of the morning and evening draws (-1: not in the window), in
    # time order, then the heater runs from a draw until the tank is reheated.
    draw_step = np.full(2 * days.shape[0], -1, dtype=np.int64)
    draw_kwh = np.zeros(2 * days.shape[0])
    if water_kw > 0.0:
        for j in range(days.shape[0]):
            for e, (at, kwh) in enumerate(((DAY_DRAW1_H, DAY_DRAW1_KWH),
                                           (DAY_DRAW2_H, DAY_DRAW2_KWH))):
                draw_step[2 * j + e] = clock_step(hour, day_start[j], day_start[j + 1],
                                                  days[j, at], step_h)
                draw_kwh[2 * j + e] = days[j, kwh]
    next_draw = 0
    water_step = np.int64(0)
    water_remaining = 0.0

    for t0 in range(0, n_steps, BLOCK_STEPS):
        n = min(BLOCK_STEPS, n_steps - t0)
        # Views of this block, indexed from 0 so that LLVM sees non-negative indices.
        col0 = pad + t0 + shift
        member = base[used[0], col0:col0 + n]
        w = weights[used[0]]
        for i in range(n):
            shape[i] = w * member[i]
        for j in range(1, n_used):
            member = base[used[j], col0:col0 + n]
            w = weights[used[j]]
            for i in range(n):
                shape[i] += w * member[i]
        temp = temperature[t0:t0 + n]
        block_draws(noise_key, event_key, t0, n, innovation, params[SPIKE_SIZE],
                    params[SPIKE_SHARE], contrast, heat_min_kw, cool_min_kw, shape, noise_step,
                    spike_kw, heat_cycle, cool_cycle)

        # The recursions with a float dependency chain share one loop, so that the processor
        # overlaps their latencies. Base (appliance) load: shaped AR(1) noise plus the spike
        # (adding a zero spike leaves the value unchanged, so this equals the branchy form of
        # the twins). Building air: the outdoor temperature lagged by the heating and the
        # cooling time constants (computed whether or not the customer heats or cools; unused
        # then), as ``keep·air + α·T`` with ``α·T`` formed first (vectorised) so that each
        # recursion's chain is one fused multiply-add per step.
        for i in range(n):
            heat_air_block[i] = alpha_heat * temp[i]
            cool_air_block[i] = alpha_cool * temp[i]
        for i in range(n):
            noise = phi * noise + noise_step[i]
            base_kw[i] = (shape[i] * max(1.0 + noise, 0.0) + spike_kw[i]) * mean_kw
            heat_air = keep_heat * heat_air + heat_air_block[i]
            heat_air_block[i] = heat_air
            cool_air = keep_cool * cool_air + cool_air_block[i]
            cool_air_block[i] = cool_air

        # Flexible load = heating + cooling + EV + water heater, summed in this order. The
        # twins add 0.0 for an absent device, which leaves the (non-negative) sum unchanged,
        # so here an absent device skips its loop. Heating and cooling are branch-free (the
        # random compressor cycling is a select), so LLVM vectorises them.
        heat_in = heat_schedule[t0:t0 + n]
        cool_in = cool_schedule[t0:t0 + n]
        if heat_k > 0.0 and is_heat_pump:
            cop_in = cop_ratio[t0:t0 + n]
            for i in range(n):
                deficit = balance_c - heat_air_block[i]
                heat_kw = heat_k * deficit * heat_in[i] * cop_in[i]
                # Below minimum modulation the compressor cycles on/off (same mean).
                cycled = heat_min_kw if heat_cycle[i] < heat_kw else 0.0
                heat_kw = cycled if heat_kw < heat_min_kw else heat_kw
                flexible[i] = heat_kw if deficit > 0.0 else 0.0
        elif heat_k > 0.0:
            for i in range(n):
                deficit = balance_c - heat_air_block[i]
                heat_kw = heat_k * deficit * heat_in[i]
                flexible[i] = heat_kw if deficit > 0.0 else 0.0
        else:
            flexible[:n] = 0.0
        if cool_k > 0.0:
            for i in range(n):
                excess = cool_air_block[i] - setpoint_c
                cool_kw = cool_k * excess * cool_in[i]
                cycled = cool_min_kw if cool_cycle[i] < cool_kw else 0.0
                cool_kw = cycled if cool_kw < cool_min_kw else cool_kw
                flexible[i] += cool_kw if excess > 0.0 else 0.0

        # EV: plug in on arrival, charge at full power until full or departure. The twins run
        # this as a state machine on every step (unplug at departure, plug in at arrival,
        # charge); here only a session's charging steps run. A session starts with an empty
        # account (arrival is at 12:00 or later, departure the next morning by 10:00, so the
        # previous session has been unplugged, which zeroes it, and ``0.0 + energy`` is exact)
        # and ends when the battery is full or at departure, whichever is first; no other
        # step charges. The steps and their arithmetic are the twins'.
        t_end = t0 + n
        while ev_kw > 0.0:
            if not ev_charging:
                while next_session < arrival.shape[0] and arrival[next_session] < 0:
                    next_session += 1
                if next_session == arrival.shape[0] or arrival[next_session] >= t_end:
                    break
                ev_step = arrival[next_session]
                ev_remaining = min(days[next_session, DAY_ENERGY], EV_BATTERY_KWH)
                ev_leave_day = first_day + next_session + 1
                ev_leave_h = days[next_session, DAY_DEPARTURE_H]
                next_session += 1
                ev_charging = True
            elif day[ev_step] > ev_leave_day or (day[ev_step] == ev_leave_day
                                                 and hour[ev_step] >= ev_leave_h):
                ev_charging = False
                continue
            if ev_remaining <= 0.0:
                ev_charging = False
                continue
            ev_load = min(ev_kw, ev_remaining / step_h)
            ev_remaining -= ev_load * step_h
            flexible[ev_step - t0] += ev_load
            ev_step += 1
            if ev_step == t_end:
                break

        # Water heater: reheats after the morning and evening draws. The twins test every step
        # for a draw and heat while the tank is short; here only the draw steps and the
        # heating steps run (in a step without heating the twins add 0.0, which leaves the
        # non-negative sum unchanged). A draw lands before that step's heating, as in the twins.
        n_draws = draw_step.shape[0]
        while water_kw > 0.0:
            while next_draw < n_draws and draw_step[next_draw] < 0:
                next_draw += 1
            if water_remaining <= 0.0:  # the tank is full: on to the next draw
                if next_draw == n_draws or draw_step[next_draw] >= t_end:
                    break
                water_step = draw_step[next_draw]
            if next_draw < n_draws and draw_step[next_draw] == water_step:
                water_remaining += draw_kwh[next_draw]
                next_draw += 1
            if water_remaining > 0.0:
                water_load = min(water_kw, water_remaining / step_h)
                water_remaining -= water_load * step_h
                flexible[water_step - t0] += water_load
            water_step += 1
            if water_step == t_end:  # still heating: the next block goes on from its start
                break

        pv_in = pv_factor[t0:t0 + n]
        p_block = p_out[t0:t0 + n]
        q_block = q_out[t0:t0 + n]
        flex_block = flex_out[t0:t0 + n]
        pv_block = pv_out[t0:t0 + n]
        for i in range(n):
            gross = base_kw[i] + flexible[i]
            pv = pv_kwp * pv_in[i] * pv_derate
            p_block[i] = gross - pv
            q_block[i] = gross * tan_phi
            flex_block[i] = flexible[i]
            pv_block[i] = pv


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
    day_start = day_starts(day)
    for i in numba.prange(customer_ids.shape[0]):
        simulate_customer(seed, customer_ids[i], weights[i], base, pad, pad, temperature,
                          pv_factor, hour, day, day_start, cop_ratio, heat_schedule,
                          cool_schedule, step_h, params[i], p_out[i], q_out[i], flex_out[i],
                          pv_out[i])


@parallel_jit
def add_rows_by_group(groups, rows, total):
    """``total[groups[i], t] += rows[i, t]``, rows added in order ``i = 0, 1, ..``.

    The same sums, in the same order, as ``np.add.at(total, groups, rows)`` (which costs ~16 ns
    per element here, more than simulating it); threads split the time axis, so every sum keeps
    its row order and the result is bitwise independent of the thread count.

    Parameters
    ----------
    groups : [n] int64 group index of each row, in ``0 .. total.shape[0] - 1``
    rows : [n, T] values to add
    total : [G, T] running group totals, updated in place
    """
    n, n_steps = rows.shape
    n_blocks = (n_steps + BLOCK_STEPS - 1) // BLOCK_STEPS
    for b in numba.prange(n_blocks):
        t0 = b * BLOCK_STEPS
        t1 = min(t0 + BLOCK_STEPS, n_steps)
        for i in range(n):
            g = groups[i]
            for t in range(t0, t1):
                total[g, t] += rows[i, t]
