"""Typed, frozen, validated scenario schema (TOML → pydantic).

Every field carries bounds and a description; `gridflex check FILE` prints the resolved values.
Validation errors name the field path (``offers.curtailment[2].kw``), see `scenarios.load`.
Units are in the field names (``_kw``, ``_eur``, ``_h``, ``_pct``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import UnionType
from typing import Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TIERS: tuple[str, ...] = ("A", "B", "C", "D")
SEGMENTS: tuple[str, ...] = ("residential", "commercial", "industrial", "agricultural")


class _Model(BaseModel):
    """Base: frozen, strict types, unknown keys are errors (typos must not pass silently).

    Strict: ``days = "2"`` or ``days = true`` is an error naming the field, never 2 or 1; an
    integer is still a valid float (``price_eur_per_kwh = 1``). These lossless conversions keep
    TOML input and JSON round trips (sweeps) working: a string to a path, an ISO date string
    (``"2016-01-11"``) or a midnight date-time to a date, and a list to a tuple.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _lossless_conversions(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        converted = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name) if isinstance(name, str) else None
            if field is None:
                continue
            kinds = _annotation_kinds(field.annotation)
            if isinstance(value, str) and Path in kinds:
                converted[name] = Path(value)
            elif isinstance(value, str) and dt.date in kinds:
                try:
                    converted[name] = dt.date.fromisoformat(value)
                except ValueError:
                    pass  # left to the strict check, which names the field
            elif (isinstance(value, dt.datetime) and dt.date in kinds and value.tzinfo is None
                  and value.time() == dt.time(0)):
                converted[name] = value.date()  # a TOML local date-time at midnight
            elif isinstance(value, list) and tuple in kinds:
                converted[name] = tuple(value)
        return converted


def _annotation_kinds(annotation: object) -> set[object]:
    """The plain types an annotation admits: ``Path | None`` → {Path, NoneType}."""
    args = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    return {get_origin(a) or a for a in args}


class NetworkConfig(_Model):
    source: str = Field(
        description=(
            "Feeder: 'pandapower:NAME' (cigre_lv, cigre_mv, kerber_landnetz_kabel_1, "
            "dickert_lv, ...), 'simbench:CODE' (any SimBench code) or 'file:PATH' "
            "(pandapower JSON, relative to the scenario file)."
        ),
    )
    sgen_dispatch: Literal["auto", "profiles", "weather", "rated", "off"] = Field(
        "auto",
        description=(
            "How the net's own static generators are dispatched: by the net's own SimBench "
            "profiles at the same date and time ('profiles'), PV by the weather's per-kWp output "
            "and others at p_mw ('weather'), at p_mw ('rated'), or switched off; 'auto' takes "
            "'profiles' where the net has them, else 'weather'."
        ),
    )
    phases: Literal["balanced", "unbalanced"] = Field(
        "balanced",
        description=(
            "Power flow: 'balanced' (positive sequence, the default for MV grids) or "
            "'unbalanced' (three-phase, customers on their phase; the net needs zero-sequence "
            "data: lines r0/x0/c0, transformer vector group and vk0/vkr0, ext_grid x0x/r0x0)."
        ),
    )

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        scheme, _, rest = v.partition(":")
        if scheme not in ("pandapower", "simbench", "file") or not rest:
            raise ValueError("must be 'pandapower:NAME', 'simbench:CODE' or 'file:PATH'")
        return v


#: Fewest simulated days from which design days are picked by forecast (a day-ahead model
#: trained on fewer days than two weeks has not seen each weekday twice).
DESIGN_FORECAST_MIN_DAYS = 14


#: First and last calendar year a simulated window may start in.
SUPPORTED_YEARS: tuple[int, int] = (1900, 2200)


class TimeConfig(_Model):
    start: dt.date = Field(description="First simulated day (local time).")
    days: int = Field(7, ge=1, le=366, description="Number of simulated days.")
    step_min: Literal[5, 10, 15, 30, 60] = Field(15, description="Time step [min].")
    country: str = Field(
        "DE", min_length=2, max_length=3, description="Country code for public holidays."
    )
    design_days: int = Field(
        2, ge=1, le=31, description="Number of peak days the optimizer designs the offers for."
    )
    design_days_from: Literal["forecast", "simulation"] = Field(
        "forecast",
        description=(
            "How the design days are chosen. 'forecast': the days with the highest "
            "out-of-sample day-ahead forecast of the feeder peak (calendar and temperature, "
            "`sim.forecast`; what a planner knows the day before), when at least "
            f"{DESIGN_FORECAST_MIN_DAYS} days are simulated, else as 'simulation'. "
            "'simulation': the simulated peak days (perfect foresight)."
        ),
    )

    @field_validator("start")
    @classmethod
    def _supported_year(cls, v: dt.date) -> dt.date:
        # Time stamps are datetime64[ns] (years 1678–2261); a planning window lies well inside.
        if not SUPPORTED_YEARS[0] <= v.year <= SUPPORTED_YEARS[1]:
            raise ValueError(f"{v.isoformat()} is outside the supported years "
                             f"{SUPPORTED_YEARS[0]}–{SUPPORTED_YEARS[1]}")
        return v

    @model_validator(mode="after")
    def _design_within_window(self) -> TimeConfig:
        if self.design_days > self.days:
            raise ValueError(f"design_days ({self.design_days}) exceeds days ({self.days})")
        return self


class WeatherConfig(_Model):
    source: Literal["synthetic", "file"] = Field(
        "synthetic", description="Synthetic weather for a climate, or a CSV file."
    )
    climate: Literal["temperate", "continental", "mediterranean", "nordic"] = Field(
        "temperate", description="Climate of the synthetic weather."
    )
    file: Path | None = Field(
        None,
        description="Weather CSV (timestamp,temperature_c,ghi_w_m2), relative to the scenario.",
    )
    temperature_offset_c: float = Field(
        0.0, ge=-30, le=30, description="Shift added to the temperature [°C] (cold snap, heat wave)."
    )

    @model_validator(mode="after")
    def _file_given(self) -> WeatherConfig:
        if self.source == "file" and self.file is None:
            raise ValueError("weather.file is required when weather.source = 'file'")
        return self


class SegmentMix(_Model):
    residential: float = Field(0.85, ge=0, le=1, description="Share of residential customers.")
    commercial: float = Field(0.12, ge=0, le=1, description="Share of commercial customers.")
    industrial: float = Field(0.02, ge=0, le=1, description="Share of industrial customers.")
    agricultural: float = Field(0.01, ge=0, le=1, description="Share of agricultural customers.")

    @model_validator(mode="after")
    def _sums_to_one(self) -> SegmentMix:
        total = self.residential + self.commercial + self.industrial + self.agricultural
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"segment shares must sum to 1 (got {total:.4f})")
        return self


class CustomersConfig(_Model):
    source: Literal["synthetic", "file", "meter"] = Field(
        "synthetic",
        description="Synthesize a population, read it from a CSV file, or drive it by meter data.",
    )
    file: Path | None = Field(
        None, description="Customers CSV (see customers.io), relative to the scenario."
    )
    count: int = Field(
        200, ge=1, le=1_000_000, description="Number of synthetic customers on the feeder."
    )
    mix: SegmentMix = Field(default_factory=SegmentMix, description="Segment shares.")
    ev_share: float = Field(0.15, ge=0, le=1, description="Share of residential customers with an EV.")
    heat_pump_share: float = Field(
        0.15, ge=0, le=1, description="Share of residential customers with a heat pump."
    )
    ac_share: float = Field(
        0.05, ge=0, le=1, description="Share of residential customers with air conditioning."
    )
    pv_share: float = Field(
        0.15, ge=0, le=1, description="Share of residential customers with rooftop PV."
    )
    electric_heating_share: float = Field(
        0.05, ge=0, le=1, description="Share of residential customers with direct electric heating."
    )
    energy_scale: float = Field(
        1.0, gt=0, le=10, description="Multiplier on the archetypes' annual energy."
    )
    size_to_network: bool = Field(
        True,
        description=(
            "Scale each load element's customers so that their coincident design peak matches the "
            "element's rated p_mw in the net (keeps the feeder's loading realistic)."
        ),
    )

    @model_validator(mode="after")
    def _file_given(self) -> CustomersConfig:
        if self.source == "file" and self.file is None:
            raise ValueError("customers.file is required when customers.source = 'file'")
        return self

    # Meter-driven customers (customers.source = "meter"; see scenarios/meter_loads.py).
    meter_file: Path | None = Field(
        None, description="Interval meter data (customer_id,timestamp,kwh), relative to the scenario."
    )
    register_file: Path | None = Field(
        None,
        description=(
            "Meter register CSV: customer_id (as in the meter file), bus (or load element), "
            "segment, optional customers-file columns; relative to the scenario."
        ),
    )
    meter_tz: str = Field("Europe/Berlin", description="Time zone of the meters' local clocks.")

    # Meter-driven customers read from a data store (scenarios/store.py) instead of files.
    store: str | None = Field(
        None, description=(
            "Data store holding meter reads and register: a folder (DuckDB, relative to the "
            "scenario) or postgresql://… URL; replaces meter_file and register_file."))
    store_customers: list[str] | None = Field(
        None, description="Customer IDs to read from the store (default: the whole register).")
    store_feeder: str | None = Field(
        None, description="Read only the register's customers whose 'feeder' field is this.")
    pseudonymize: bool = Field(
        False, description=("Outputs carry a keyed pseudonym (HMAC-SHA-256, key in the environment "
                            "variable GRIDFLEX_PSEUDONYM_KEY) instead of each meter's customer ID."))

    @model_validator(mode="after")
    def _meter_files_given(self) -> CustomersConfig:
        if self.source == "meter" and self.store is None and (
                self.meter_file is None or self.register_file is None):
            raise ValueError("customers.meter_file and customers.register_file are required when "
                             "customers.source = 'meter'")
        return self


class TierPolicy(_Model):
    eligible_offers: list[str] | Literal["all"] = Field(
        "all", description="Offer names (tariff or curtailment contract names) this tier may get."
    )
    incentive_cap_eur: float = Field(
        1e9, ge=0, description="Largest up-front incentive per customer of this tier [EUR]."
    )
    deposit_eur: float = Field(0.0, ge=0, description="Security deposit asked on enrolment [EUR].")
    pay_for_performance_only: bool = Field(
        False, description="Incentives paid only per delivered kWh, never up front."
    )
    prepayment_suggested: bool = Field(
        False, description="Suggest a prepayment meter to customers of this tier."
    )


def _default_policies() -> dict[str, TierPolicy]:
    return {
        "A": TierPolicy(),
        "B": TierPolicy(incentive_cap_eur=150.0),
        "C": TierPolicy(incentive_cap_eur=50.0, deposit_eur=50.0, pay_for_performance_only=True),
        "D": TierPolicy(
            incentive_cap_eur=0.0,
            deposit_eur=150.0,
            pay_for_performance_only=True,
            prepayment_suggested=True,
        ),
    }


class CreditConfig(_Model):
    history_months: int = Field(24, ge=12, le=60, description="Payment history length [months].")
    history_file: Path | None = Field(
        None,
        description=(
            "Payment history CSV (customer_id,month,bill_eur,paid_eur,days_late"
            "[,disconnection_notice]), relative to the scenario; synthesized when absent."
        ),
    )
    tier_min_scores: tuple[float, float, float] = Field(
        (680.0, 620.0, 560.0),
        description="Lowest scorecard points of tiers A, B and C (below the last: tier D).",
    )
    warning_threshold: float = Field(
        0.25, gt=0, lt=1, description="Arrears probability (next 3 months) that raises a warning."
    )
    policies: dict[Literal["A", "B", "C", "D"], TierPolicy] = Field(
        default_factory=_default_policies, description="Risk decisions per credit tier."
    )
    scorecard: Path | None = Field(
        None,
        description=(
            "Scorecard JSON fitted on the utility's whole book (`gridflex credit fit`), relative "
            "to the scenario; it scores the customers instead of a card fitted on the feeder."
        ),
    )

    @field_validator("tier_min_scores")
    @classmethod
    def _descending(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not (v[0] > v[1] > v[2]):
            raise ValueError("tier scores must be strictly descending (A > B > C)")
        return v

    @field_validator("policies", mode="before")
    @classmethod
    def _merge_with_default_policies(cls, v: object) -> object:
        """A tier table overrides only the fields it writes; tiers not written keep their
        default policy (a lone ``[credit.policies.A]`` leaves B, C and D as they were)."""
        if not isinstance(v, dict):
            return v
        merged: dict[object, object] = {
            tier: policy.model_dump() for tier, policy in _default_policies().items()
        }
        for tier, given in v.items():
            base = merged.get(tier)
            merged[tier] = {**base, **given} if isinstance(base, dict) and isinstance(given, dict) \
                else given
        return merged

    @field_validator("policies")
    @classmethod
    def _all_tiers(cls, v: dict[str, TierPolicy]) -> dict[str, TierPolicy]:
        missing = [t for t in TIERS if t not in v]
        if missing:
            raise ValueError(f"a policy is needed for every tier; missing {', '.join(missing)}")
        return v


class TariffPeriod(_Model):
    name: str = Field(min_length=1, description="Period name (offpeak, shoulder, peak).")
    start_h: float = Field(ge=0, lt=24, description="Period start, hour of day [h].")
    end_h: float = Field(gt=0, le=24, description="Period end, hour of day [h] (exclusive).")
    price_eur_per_kwh: float = Field(ge=0, le=10, description="Energy price [EUR/kWh].")

    @model_validator(mode="after")
    def _ordered(self) -> TariffPeriod:
        if self.end_h <= self.start_h:
            raise ValueError(f"end_h ({self.end_h}) must be after start_h ({self.start_h})")
        return self


class Tariff(_Model):
    name: str = Field(min_length=1, description="Tariff name, unique in the menu.")
    kind: Literal["flat", "tou"] = Field(description="Flat energy price or time of use.")
    price_eur_per_kwh: float | None = Field(
        None, ge=0, le=10, description="Energy price of a flat tariff [EUR/kWh]."
    )
    periods: list[TariffPeriod] = Field(
        default_factory=list,
        description="TOU periods; together they must cover 0–24 h without gap or overlap.",
    )
    fixed_eur_per_month: float = Field(0.0, ge=0, description="Standing charge [EUR/month].")

    @model_validator(mode="after")
    def _prices(self) -> Tariff:
        if self.kind == "flat":
            if self.price_eur_per_kwh is None:
                raise ValueError("a flat tariff needs price_eur_per_kwh")
            if self.periods:
                raise ValueError("a flat tariff takes no periods")
            return self
        if not self.periods:
            raise ValueError("a TOU tariff needs periods")
        spans = sorted((p.start_h, p.end_h, p.name) for p in self.periods)
        cursor = 0.0
        for start, end, name in spans:
            if start > cursor + 1e-9:
                raise ValueError(f"TOU periods leave a gap from {cursor:g} h to {start:g} h")
            if start < cursor - 1e-9:
                raise ValueError(f"TOU period '{name}' overlaps the one before it at {start:g} h")
            cursor = end
        if cursor < 24 - 1e-9:
            raise ValueError(f"TOU periods leave a gap from {cursor:g} h to 24 h")
        return self


class CurtailmentContract(_Model):
    name: str = Field(min_length=1, description="Contract name, unique in the menu.")
    kw: float = Field(gt=0, le=10_000, description="Contracted curtailment per event [kW].")
    max_events: int = Field(10, ge=1, le=365, description="Most events per season.")
    event_h: float = Field(2.0, gt=0, le=12, description="Event duration [h].")
    incentive_eur: float = Field(
        0.0, ge=0, le=100_000, description="Up-front enrolment incentive per season [EUR]."
    )
    payment_eur_per_kwh: float = Field(
        0.0, ge=0, le=100, description="Pay-for-performance payment per curtailed kWh [EUR/kWh]."
    )
    segments: list[Literal["residential", "commercial", "industrial", "agricultural"]] = Field(
        default_factory=lambda: list(SEGMENTS), description="Segments this contract is offered to."
    )


class OffersConfig(_Model):
    current_tariff: str = Field(description="Name of the tariff customers are on today.")
    tariffs: list[Tariff] = Field(min_length=1, description="Tariff menu.")
    curtailment: list[CurtailmentContract] = Field(
        default_factory=list,
        description="Curtailment contracts; 'no contract' is always on the menu.",
    )

    @model_validator(mode="after")
    def _names(self) -> OffersConfig:
        names = [t.name for t in self.tariffs] + [c.name for c in self.curtailment]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"offer names must be unique; repeated: {', '.join(dupes)}")
        if self.current_tariff not in {t.name for t in self.tariffs}:
            raise ValueError(f"current_tariff '{self.current_tariff}' is not in the tariff menu")
        return self


class ResponseConfig(_Model):
    own_elasticity: float = Field(
        -0.10, ge=-1, le=0, description="Own-price elasticity of peak-period demand [-]."
    )
    cross_elasticity: float = Field(
        0.04, ge=0, le=1, description="Cross-price elasticity between TOU periods [-]."
    )
    conservation_effect: float = Field(
        0.01, ge=0, le=0.2, description="Share of shifted energy not consumed at all [-]."
    )
    performance_mean: float = Field(
        0.85, gt=0, le=1, description="Mean share of the contracted curtailment delivered [-]."
    )
    performance_sd: float = Field(
        0.10, ge=0, le=0.5, description="Spread of the delivered share between events [-]."
    )
    rebound_share: float = Field(
        0.5, ge=0, le=1.5, description="Curtailed energy paid back after the event [-]."
    )
    rebound_h: float = Field(2.0, gt=0, le=12, description="Length of the payback period [h].")
    acceptance_intercept: float = Field(
        -1.0, ge=-20, le=20, description="Logit intercept of offer acceptance [-]."
    )
    acceptance_per_eur: float = Field(
        0.02, ge=0, le=5, description="Logit coefficient on the offer's yearly value [1/EUR]."
    )
    acceptance_per_discomfort: float = Field(
        2.0, ge=0, le=50, description="Logit coefficient on expected discomfort [-]."
    )
    fatigue_per_event: float = Field(
        0.02, ge=0, le=0.5, description="Opt-out probability added per event already called [-]."
    )


class SatisfactionConfig(_Model):
    weighting: Literal["entropy", "critic"] = Field(
        "entropy", description="Objective weighting method over the factor matrix."
    )
    voltage_band_pu: float = Field(
        0.05, gt=0, le=0.2, description="Voltage band counted as good quality (±) [p.u.]."
    )


class ObjectiveConfig(_Model):
    peak_value_eur_per_kw: float = Field(
        60.0, ge=0, description="Capacity value of one kW of feeder peak reduction [EUR/kW]."
    )
    incentive_weight: float = Field(1.0, ge=0, description="Weight on incentives paid [-].")
    bad_debt_weight: float = Field(1.0, ge=0, description="Weight on expected bad debt [-].")
    satisfaction_value_eur: float = Field(
        0.0, ge=0, description="Value of one unit of mean satisfaction across customers [EUR]."
    )
    peak_quantile: float = Field(
        0.5, gt=0, lt=1,
        description=(
            "Quantile of the window's feeder peak after the offers that the plan states and "
            "is judged by (0.5 = the median of the replay's draws) [-]."
        ),
    )


class LimitsConfig(_Model):
    budget_eur: float = Field(1e9, ge=0, description="Total incentive budget for the season [EUR].")
    satisfaction_floor_mean: float = Field(
        0.0, ge=0, le=1, description="Lowest mean predicted satisfaction after offers [-]."
    )
    satisfaction_floor_customer: float = Field(
        0.0, ge=0, le=1, description="Lowest predicted satisfaction of any customer [-]."
    )
    revenue_change_pct: float = Field(
        100.0, ge=0, le=100, description="Allowed change of tariff revenue (± band) [%]."
    )
    never_raise_peak: bool = Field(
        False,
        description=(
            "Never accept an assignment whose expected feeder peak on the design steps exceeds "
            "the peak without offers (a tariff may otherwise raise it when it pays through "
            "lower bad debt or higher satisfaction)."
        ),
    )
    trafo_loading_max_pct: float = Field(
        1000.0,
        gt=0,
        description=(
            "Transformer loading the offers must respect on the design steps [%] "
            "(the default leaves it unconstrained); above 100 % also counts as a violation."
        ),
    )
    vm_min_pu: float = Field(
        0.95, gt=0.5, lt=1.0, description="Lowest acceptable bus voltage (counted as violation) [p.u.]."
    )
    vm_max_pu: float = Field(
        1.05, gt=1.0, lt=1.5, description="Highest acceptable bus voltage (counted as violation) [p.u.]."
    )
    line_loading_max_pct: float = Field(
        100.0, gt=0, le=1000, description="Line loading counted as a violation above this [%]."
    )
    vuf_max_pct: float = Field(
        2.0, gt=0, le=100,
        description=("Voltage unbalance factor |V2|/|V1| counted as a violation above this, "
                     "in unbalanced mode [%] (EN 50160: 2 %)."),
    )


class SolverConfig(_Model):
    time_limit_s: float = Field(120.0, gt=0, le=86_400, description="Solver time limit [s].")
    mip_gap: float = Field(1e-4, ge=0, le=1, description="Relative MIP gap to stop at [-].")
    threads: int = Field(1, ge=1, le=64, description="Solver threads.")
    method: Literal["auto", "mip", "lp-fix", "lagrange-fix", "cluster"] = Field(
        "auto",
        description=(
            "Exact MIP, LP relaxation with fixing and a sub-MIP (gap against the LP bound), "
            "Lagrangian dual with fixing and a sub-MIP (no full model; gap against the dual "
            "bound), or integer counts per cluster of alike customers; 'auto' picks MIP up to "
            "300 customers, else lagrange-fix."
        ),
    )


class DispatchConfig(_Model):
    """When the utility calls a curtailment event (`scenarios.dispatch`).

    Each morning the day-ahead forecast of the feeder's daily peak is compared with a threshold;
    an event is called when the forecast reaches it and the contract has events left. By default
    the threshold paces each contract's ``max_events`` over the season: with ``k`` events left
    and ``n`` season days left it is the ``1 − k/n`` quantile of the daily peaks seen so far.
    """

    forecast: Literal["p10", "p50", "p90"] = Field(
        "p50", description="Which quantile of the day-ahead forecast is compared [-]."
    )
    threshold_kw: float | None = Field(
        None, gt=0,
        description="Fixed threshold on the forecast daily peak [kW] instead of the paced one.",
    )
    season_days: float = Field(
        91.0, ge=1, le=366, description="Days each contract's max_events must last [days]."
    )


class EvaluationConfig(_Model):
    draws: int = Field(20, ge=1, le=10_000, description="Monte-Carlo replays of the offers.")


class Scenario(_Model):
    name: str = Field(min_length=1, max_length=200, description="Scenario name.")
    description: str = Field("", description="What the scenario studies.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of every random stream.")
    network: NetworkConfig
    time: TimeConfig
    weather: WeatherConfig = Field(default_factory=WeatherConfig)
    customers: CustomersConfig = Field(default_factory=CustomersConfig)
    credit: CreditConfig = Field(default_factory=CreditConfig)
    offers: OffersConfig
    response: ResponseConfig = Field(default_factory=ResponseConfig)
    satisfaction: SatisfactionConfig = Field(default_factory=SatisfactionConfig)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    solver: SolverConfig = Field(default_factory=SolverConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    sweep: dict[str, list[bool | int | float | str]] = Field(
        default_factory=dict,
        description=(
            "Parameter sweep for `gridflex batch`: field path (e.g. 'customers.ev_share') → "
            "values; batch runs every combination as its own scenario."
        ),
    )
    base_dir: Path = Field(
        Path("."), description="Folder relative paths resolve against (the scenario's folder)."
    )

    @model_validator(mode="after")
    def _policy_offers_exist(self) -> Scenario:
        names = {t.name for t in self.offers.tariffs} | {c.name for c in self.offers.curtailment}
        names.add("none")
        for tier, policy in self.credit.policies.items():
            if policy.eligible_offers == "all":
                continue
            unknown = [n for n in policy.eligible_offers if n not in names]
            if unknown:
                raise ValueError(
                    f"credit.policies.{tier}.eligible_offers names unknown offers: "
                    + ", ".join(unknown)
                )
        return self
