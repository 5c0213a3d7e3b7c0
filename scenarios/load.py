"""Read a TOML scenario into a validated `Scenario`, with one-line errors naming the field."""

from __future__ import annotations

import hashlib
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scenarios.errors import InputError
from scenarios.schema import Scenario

LIBRARY_PACKAGE = "scenarios.library"


def format_location(loc: tuple[Any, ...]) -> str:
    """Turn a pydantic error location into a field path: ``offers.curtailment[2].kw``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith("function-"):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "scenario"


def describe_validation_error(error: ValidationError, source: str) -> str:
    """One line naming the first failing field, plus a count of the others."""
    errors = error.errors(include_url=False)
    first = errors[0]
    loc = format_location(tuple(first["loc"]))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling)"
    elif first["type"] == "missing":
        msg = "required field is missing"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if not first["loc"]:
        # A whole-scenario check names its own field path in the message.
        return f"{source}: {msg}{more}"
    return f"{source}: {loc}: {msg}{more}"


def parse_scenario(data: dict[str, Any], *, base_dir: Path, source: str) -> Scenario:
    """Validate a scenario mapping; relative paths resolve against `base_dir`."""
    if "base_dir" in data:
        raise InputError(f"{source}: base_dir: unknown key (check the spelling)")
    try:
        scenario = Scenario.model_validate({**data, "base_dir": base_dir})
    except ValidationError as error:
        raise InputError(describe_validation_error(error, source)) from None
    check_tier_policies(scenario, source)
    check_country(scenario, source)
    for field, path in _referenced_files(scenario):
        try:
            resolve_input_path(scenario, path, field)
        except InputError as error:
            raise InputError(f"{source}: {error}") from None
    if scenario.sweep:
        # Every combination is validated now, so `gridflex check` catches a bad sweep value
        # before a batch starts.
        from scenarios.sweep import expand_sweep

        expand_sweep(scenario, source=source)
    return scenario


def check_tier_policies(scenario: Scenario, source: str) -> None:
    """Every credit tier must keep a feasible offer: the rule, stated and enforced.

    The status quo — the current tariff without a curtailment contract — is always on the menu
    of every tier: it is what a customer keeps when they decline, so the optimizer never faces a
    customer with nothing to choose. A tier policy that lists offers must therefore list the
    current tariff (an empty list, or one that leaves out the current tariff, would silently
    contradict that); ``"none"`` (no curtailment contract) is implied and may be listed.

    Raises
    ------
    InputError
        ``credit.policies.<tier>.eligible_offers`` is empty or leaves out the current tariff.
    """
    current = scenario.offers.current_tariff
    for tier, policy in scenario.credit.policies.items():
        if policy.eligible_offers == "all":
            continue
        field = f"credit.policies.{tier}.eligible_offers"
        if not policy.eligible_offers:
            raise InputError(
                f"{source}: {field}: empty list leaves tier {tier} without any offer; "
                f"write [\"{current}\"] to give it only the status quo"
            )
        if current not in policy.eligible_offers:
            raise InputError(
                f"{source}: {field}: must include the current tariff '{current}' "
                "(the status quo is always available to every tier)"
            )


def check_country(scenario: Scenario, source: str) -> None:
    """``time.country`` must have a public-holiday calendar: found by `gridflex check`, not
    only when the run reaches the calendar."""
    from sim.calendar import holiday_dates

    country = scenario.time.country
    try:
        holiday_dates(country, [scenario.time.start.year])
    except InputError:
        # repr: a control character in the code must not break the one-line message.
        raise InputError(f"{source}: time.country: no public-holiday calendar for {country!r}"
                         ) from None


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file, or a bundled scenario by name.

    Raises
    ------
    InputError
        One line naming the file, the field path and the problem.
    """
    path = resolve_scenario_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read scenario ({error.__class__.__name__}: {error})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: malformed TOML: {error}") from None
    return parse_scenario(data, base_dir=path.resolve().parent, source=str(path))


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario name → file path."""
    folder = resources.files(LIBRARY_PACKAGE)
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".toml")
    }


def resolve_scenario_path(path: Path | str) -> Path:
    """A file path as given, else a bundled scenario name; InputError when neither exists."""
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    library = bundled_scenarios()
    if str(path) in library:
        return library[str(path)]
    if candidate.exists():
        raise InputError(f"{path}: not a file")
    known = ", ".join(library)
    raise InputError(f"{path}: no such scenario file or bundled scenario (bundled: {known})")


def resolve_input_path(scenario: Scenario, path: Path, field: str) -> Path:
    """Resolve a path from the scenario against its folder; relative paths may not escape it.

    Absolute paths are taken as the user wrote them.
    """
    if path.is_absolute():
        resolved = path
    else:
        base = scenario.base_dir.resolve()
        resolved = (base / path).resolve()
        if not resolved.is_relative_to(base):
            raise InputError(f"{field}: relative path '{path}' escapes the scenario folder {base}")
    if not resolved.is_file():
        raise InputError(f"{field}: file not found: {resolved}")
    return resolved


def scenario_hash(scenario: Scenario) -> str:
    """Content hash of the resolved scenario and the files it reads (for batch resume)."""
    payload = scenario.model_dump(mode="json", exclude={"base_dir"})
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode())
    for field, path in _referenced_files(scenario):
        try:
            digest.update(resolve_input_path(scenario, path, field).read_bytes())
        except InputError:
            digest.update(f"missing:{path}".encode())
    return digest.hexdigest()[:16]


def _referenced_files(scenario: Scenario) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    if scenario.network.source.startswith("file:"):
        files.append(("network.source", Path(scenario.network.source.removeprefix("file:"))))
    if scenario.weather.file is not None:
        files.append(("weather.file", scenario.weather.file))
    if scenario.customers.file is not None:
        files.append(("customers.file", scenario.customers.file))
    if scenario.credit.history_file is not None:
        files.append(("credit.history_file", scenario.credit.history_file))
    if scenario.credit.scorecard is not None:
        files.append(("credit.scorecard", scenario.credit.scorecard))
    for name in ("meter_file", "register_file"):  # meter-driven customers
        if getattr(scenario.customers, name) is not None:
            files.append((f"customers.{name}", getattr(scenario.customers, name)))
    return files
