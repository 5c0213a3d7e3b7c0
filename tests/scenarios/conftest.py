"""Shared fixtures for the scenarios tests: tiny scenario files and a CLI runner.

`make_scenario` (session scope) writes a small valid scenario — CIGRE LV, one day at hourly
steps, a dozen customers, two draws — into a fresh folder, with overrides merged in, keys
dropped and side files (CSV, JSON) written next to it. Tests mutate this one base instead of
copying TOML text around, so each bad-input case shows exactly what it changes.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

TINY_SCENARIO: dict[str, Any] = {
    "name": "tiny-cigre",
    "description": "Smallest useful scenario: CIGRE LV, one day, a dozen customers.",
    "seed": 3,
    "network": {"source": "pandapower:cigre_lv"},
    "time": {"start": dt.date(2016, 1, 12), "days": 1, "step_min": 60, "design_days": 1},
    "customers": {"count": 12, "ev_share": 0.3, "heat_pump_share": 0.3},
    "offers": {
        "current_tariff": "flat",
        "tariffs": [
            {"name": "flat", "kind": "flat", "price_eur_per_kwh": 0.30},
            {
                "name": "tou",
                "kind": "tou",
                "periods": [
                    {"name": "night", "start_h": 0, "end_h": 7, "price_eur_per_kwh": 0.2},
                    {"name": "day", "start_h": 7, "end_h": 17, "price_eur_per_kwh": 0.3},
                    {"name": "peak", "start_h": 17, "end_h": 21, "price_eur_per_kwh": 0.45},
                    {"name": "late", "start_h": 21, "end_h": 24, "price_eur_per_kwh": 0.25},
                ],
            },
        ],
        "curtailment": [
            {"name": "ev-pause", "kw": 3.0, "max_events": 10, "incentive_eur": 30.0},
        ],
    },
    "solver": {"time_limit_s": 30.0},
    "evaluation": {"draws": 2},
}

ScenarioFactory = Callable[..., Path]


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base`` (tables merge, other values replace)."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def to_toml(data: Mapping[str, Any]) -> str:
    """Serialize nested dicts, lists, strings, numbers, booleans and dates as TOML."""
    lines: list[str] = []
    _emit_table(data, [], lines)
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _value(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, str | Path):
        # JSON string escapes are valid TOML basic-string escapes, except that TOML also
        # wants DEL escaped.
        return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _emit_table(data: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    nested = {}
    for key, value in data.items():
        if isinstance(value, Mapping) or _is_table_array(value):
            nested[key] = value
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested.items():
        sub = [*path, _key(key)]
        if isinstance(value, Mapping):
            lines.extend(["", f"[{'.'.join(sub)}]"])
            _emit_table(value, sub, lines)
        else:
            for item in value:
                lines.extend(["", f"[[{'.'.join(sub)}]]"])
                _emit_table(item, sub, lines)


def drop_key(data: dict[str, Any], dotted: str) -> None:
    """Remove ``a.b.c`` from nested dicts (a missing key is a test bug: KeyError)."""
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    del node[last]


@pytest.fixture(scope="session")
def make_scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioFactory:
    """Factory: write the tiny scenario (with changes) to a fresh folder, return its path.

    ``make_scenario(overrides=None, *, drop=(), files=None, text=None, filename="scenario.toml")``

    - ``overrides``: deep-merged into `TINY_SCENARIO`;
    - ``drop``: dotted keys to remove;
    - ``files``: relative path → str/bytes content written next to the scenario (folders made);
    - ``text``: raw TOML written instead of the serialized mapping (for malformed files).
    """

    def make(
        overrides: Mapping[str, Any] | None = None,
        *,
        drop: tuple[str, ...] | list[str] = (),
        files: Mapping[str, str | bytes] | None = None,
        text: str | None = None,
        filename: str = "scenario.toml",
    ) -> Path:
        folder = tmp_path_factory.mktemp("scenario")
        data = merge(TINY_SCENARIO, overrides or {})
        for dotted in drop:
            drop_key(data, dotted)
        for relative, content in (files or {}).items():
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        path = folder / filename
        path.write_text(to_toml(data) if text is None else text, encoding="utf-8")
        return path

    return make


@pytest.fixture(scope="session")
def tiny_scenario(make_scenario: ScenarioFactory) -> Path:
    """The unchanged tiny scenario (shared: do not write next to it)."""
    return make_scenario()


@pytest.fixture
def cli() -> CliRunner:
    """A Click runner for `scenarios.cli:app` with stdout and stderr kept apart."""
    return CliRunner()
