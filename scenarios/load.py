"""Read a TOML scenario into a validated `Scenario`, with one-line errors naming the field."""

from __future__ import annotations

import hashlib
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from scenarios.errors import InputError
from scenarios.scenario_checks import (  # noqa: F401  (re-exported: callers import them from here)
    _referenced_files,
    check_country,
    check_tier_policies,
    describe_validation_error,
    format_location,
    resolve_input_path,
    validate_scenario_data,
)
from scenarios.schema import Scenario
from scenarios.sweep import expand_sweep

LIBRARY_PACKAGE = "scenarios.library"


def parse_scenario(data: dict[str, Any], *, base_dir: Path, source: str) -> Scenario:
    """Validate a scenario mapping; relative paths resolve against `base_dir`; a sweep has every
    combination validated now, so `gridflex check` catches a bad sweep value before a batch
    starts."""
    scenario = validate_scenario_data(data, base_dir=base_dir, source=source)
    if scenario.sweep:
        expand_sweep(scenario, source=source)
    return scenario


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
