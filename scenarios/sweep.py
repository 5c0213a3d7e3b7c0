"""Expand a scenario's parameter sweep (and a list of seeds) into concrete scenarios.

A scenario's ``sweep`` table maps field paths to value lists::

    [sweep]
    "customers.ev_share" = [0.1, 0.3, 0.5]
    "offers.curtailment[0].kw" = [2.0, 3.0]

`expand_sweep` yields one `SweepPoint` per combination (the Cartesian product, in the order the
paths are written, last path fastest), each a fully validated `Scenario` without a sweep, with an
id that depends only on the scenario name, the swept values and the seed — not on anything else
in the file. So editing another field keeps the id (batch resume then sees a changed content hash
and recomputes that point), while each combination always lands in the same output folder.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from scenarios.errors import InputError
from scenarios.schema import Scenario

# A batch of more points than this is almost surely a typo in a value list (and would take
# longer to validate than to notice); split it into several scenario files instead.
MAX_SWEEP_POINTS = 10_000

# Paths a sweep may not touch: they define what the sweep itself is.
_FORBIDDEN_ROOTS = ("sweep", "base_dir", "name")

_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")


@dataclass(frozen=True)
class SweepPoint:
    """One concrete scenario of a sweep.

    Attributes
    ----------
    id
        Stable folder-safe id: ``<name-slug>-<8 hex>``.
    scenario
        The validated scenario with the swept values applied and an empty sweep.
    values
        Field path → value applied at this point (``seed`` included when seeds were given).
    """

    id: str
    scenario: Scenario
    values: dict[str, Any]


def slugify(name: str) -> str:
    """A folder-safe lower-case version of a scenario name (at most 48 characters)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:48].rstrip("-") or "scenario"


def point_id(name: str, values: dict[str, Any]) -> str:
    """Stable id of a sweep point from the scenario name and the values applied."""
    key = json.dumps({"name": name, "values": values}, sort_keys=True, default=str)
    return f"{slugify(name)}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def parse_field_path(path: str, where: str = "") -> list[str | int]:
    """Split ``offers.curtailment[0].kw`` into ``["offers", "curtailment", 0, "kw"]``.

    Raises
    ------
    InputError
        The path is not dotted identifiers with optional ``[index]`` suffixes.
    """
    parts: list[str | int] = []
    for piece in path.split("."):
        match = _PATH_PART.fullmatch(piece)
        if match is None:
            prefix = f"{where}: " if where else ""
            raise InputError(
                f"{prefix}sweep: '{path}' is not a field path like 'customers.ev_share'"
            )
        parts.append(match.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return parts


def expand_sweep(
    scenario: Scenario, *, seeds: list[int] | None = None, source: str | None = None
) -> list[SweepPoint]:
    """Every combination of the scenario's sweep values (× seeds) as a validated scenario.

    Parameters
    ----------
    scenario
        A validated scenario, possibly with a ``sweep`` table.
    seeds
        Seeds to run each combination with (they replace ``scenario.seed``); ``None`` keeps the
        scenario's own seed, and the seed then does not enter the id.
    source
        Name of the scenario file for error messages.

    Returns
    -------
    list[SweepPoint]
        One point per combination; a scenario without a sweep and without seeds gives one point.

    Raises
    ------
    InputError
        Unknown field path, empty value list, too many combinations, or a value that makes the
        scenario invalid — one line naming the file, the sweep path and the problem.
    """
    where = source or scenario.name
    paths = list(scenario.sweep)
    for path in paths:
        _check_path(scenario, path, where)
        if not scenario.sweep[path]:
            raise InputError(f"{where}: sweep.{path}: empty value list")
    seed_list: list[int | None] = list(dict.fromkeys(seeds)) if seeds else [None]
    count = len(seed_list)
    for path in paths:
        count *= len(scenario.sweep[path])
    if count > MAX_SWEEP_POINTS:
        raise InputError(
            f"{where}: sweep: {count} combinations exceed the limit of {MAX_SWEEP_POINTS}; "
            "split the sweep over several scenario files"
        )

    base = scenario.model_dump(mode="json", exclude={"base_dir"})
    base["sweep"] = {}
    points: list[SweepPoint] = []
    for combination in itertools.product(*(scenario.sweep[p] for p in paths)):
        for seed in seed_list:
            values: dict[str, Any] = dict(zip(paths, combination, strict=True))
            if seed is not None:
                values["seed"] = seed
            data = copy.deepcopy(base)
            for path, value in values.items():
                _assign(data, parse_field_path(path), value)
            points.append(
                SweepPoint(
                    id=point_id(scenario.name, values),
                    scenario=_validate_point(data, scenario, values, where),
                    values=values,
                )
            )
    return points


def _check_path(scenario: Scenario, path: str, where: str) -> None:
    """The path must name an existing leaf field of the scenario (lists by index)."""
    parts = parse_field_path(path, where)
    if parts[0] in _FORBIDDEN_ROOTS:
        raise InputError(f"{where}: sweep.{path}: '{parts[0]}' cannot be swept")
    node: Any = scenario.model_dump(mode="json", exclude={"base_dir"})
    walked = ""
    for part in parts:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise InputError(
                    f"{where}: sweep.{path}: index [{part}] out of range ({walked} has {size})"
                )
            walked += f"[{part}]"
        else:
            if not isinstance(node, dict) or part not in node:
                raise InputError(f"{where}: sweep.{path}: unknown field '{part}' (check the spelling)")
            walked += f".{part}" if walked else part
        node = node[part]
    if isinstance(node, dict | list):
        raise InputError(f"{where}: sweep.{path}: names a table, not a value; sweep a leaf field")


def _assign(data: Any, parts: list[str | int], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def _validate_point(
    data: dict[str, Any], scenario: Scenario, values: dict[str, Any], where: str
) -> Scenario:
    # A point's own sweep table is empty: the checks without sweep expansion are the whole check.
    from scenarios.scenario_checks import validate_scenario_data

    label = ", ".join(f"{k}={v!r}" for k, v in values.items())
    return validate_scenario_data(data, base_dir=scenario.base_dir,
                                  source=f"{where} [sweep {label}]")
