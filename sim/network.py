"""Load the feeder as a pandapower net: built-in, SimBench code or pandapower JSON file.

Three sources (``network.source`` in the scenario):

- ``pandapower:NAME`` — a net from ``pandapower.networks`` (see `PANDAPOWER_NETWORKS`);
- ``simbench:CODE`` — a SimBench grid (Meinecke et al., "SimBench — A Benchmark Dataset of
  Electric Power Systems to Compare Innovative Solutions Based on Power Flow Analysis",
  Energies 13 (2020) 3290); the data ships inside the ``simbench`` wheel, nothing is downloaded.
  The net keeps its ``profiles`` (load, renewables, storage, powerplants);
- ``file:PATH`` — a pandapower JSON file, relative to ``base_dir``.

Built-in and SimBench nets are converted once and cached as pandapower JSON under ``cache_dir``
(or ``$GRIDFLEX_CACHE``, or ``~/.cache/gridflex/nets``), keyed by the source and the pandapower /
simbench versions, and written atomically (temporary file + rename) so that concurrent runs
never read a half-written file. Building a SimBench net from its CSV tables takes ~5 s; reading
the cached JSON takes a fraction of that.

User files are never unpickled: the JSON is scanned first and any embedded object whose module is
not pandapower, pandas, numpy or geojson is refused before pandapower's decoder sees it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scenarios.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from pandapower.auxiliary import pandapowerNet

# Name → (function in pandapower.networks, keyword arguments). Balanced (positive-sequence)
# distribution feeders only; transmission test cases are reachable via ``file:``.
PANDAPOWER_NETWORKS: dict[str, tuple[str, dict[str, object]]] = {
    "cigre_lv": ("create_cigre_network_lv", {}),
    "cigre_mv": ("create_cigre_network_mv", {"with_der": False}),
    "cigre_mv_pv_wind": ("create_cigre_network_mv", {"with_der": "pv_wind"}),
    "cigre_mv_all_der": ("create_cigre_network_mv", {"with_der": "all"}),
    "kerber_landnetz_freileitung_1": ("create_kerber_landnetz_freileitung_1", {}),
    "kerber_landnetz_freileitung_2": ("create_kerber_landnetz_freileitung_2", {}),
    "kerber_landnetz_kabel_1": ("create_kerber_landnetz_kabel_1", {}),
    "kerber_landnetz_kabel_2": ("create_kerber_landnetz_kabel_2", {}),
    "kerber_dorfnetz": ("create_kerber_dorfnetz", {}),
    "kerber_vorstadtnetz_kabel_1": ("create_kerber_vorstadtnetz_kabel_1", {}),
    "kerber_vorstadtnetz_kabel_2": ("create_kerber_vorstadtnetz_kabel_2", {}),
    "dickert_lv": ("create_dickert_lv_network", {}),
    "dickert_lv_long": ("create_dickert_lv_network", {"feeders_range": "long"}),
    "mv_oberrhein": ("mv_oberrhein", {}),
    "lv_schutterwald": ("lv_schutterwald", {}),
    "case33bw": ("case33bw", {}),
}

# Unbalanced LV feeders with zero-sequence data (lines r0/x0/c0, Dyn transformer, ext_grid
# x0x/r0x0) for ``network.phases = "unbalanced"``: name → ieee_european_lv_asymmetric snapshot.
# Its single-phase snapshot loads become ``load`` elements (the customers' connection points).
IEEE_EUROPEAN_LV_NETWORKS: dict[str, str] = {"ieee_european_lv": "on_peak_566"}


def build_ieee_european_lv(case: str = "on_peak_566") -> pandapowerNet:
    """The IEEE European LV test feeder (907 buses, 55 homes; pandapower's
    ``ieee_european_lv_asymmetric``) with each home's asymmetric load as a wye ``load`` element
    of the same total power at the same bus (customers attach to those; their phase comes with
    the customer, see `customers.phases`)."""
    import pandapower as pp
    import pandapower.networks as pn

    net = pn.ieee_european_lv_asymmetric(case)
    homes = net.asymmetric_load
    for _, home in homes.iterrows():
        pp.create_load(net, int(home.bus), name=home["name"], type="wye",
                       p_mw=float(home.p_a_mw + home.p_b_mw + home.p_c_mw),
                       q_mvar=float(home.q_a_mvar + home.q_b_mvar + home.q_c_mvar))
    net.asymmetric_load = net.asymmetric_load.iloc[0:0]
    return net


# Modules whose objects a pandapower JSON file may embed (DataFrames, dtypes, std types,
# characteristics, geodata). Anything else is refused before decoding.
_ALLOWED_JSON_MODULES = ("pandapower", "pandas", "numpy", "geojson", "builtins", "shapely")


def default_cache_dir() -> Path:
    """Folder for converted nets: ``$GRIDFLEX_CACHE`` or ``~/.cache/gridflex/nets``."""
    env = os.environ.get("GRIDFLEX_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "gridflex" / "nets"


def load_network(
    source: str, *, base_dir: Path = Path("."), cache_dir: Path | None = None
) -> pandapowerNet:
    """Load the feeder named by ``source``.

    Parameters
    ----------
    source
        ``pandapower:NAME``, ``simbench:CODE`` or ``file:PATH`` (PATH relative to ``base_dir``).
    base_dir
        Folder that relative file paths resolve against (the scenario's folder).
    cache_dir
        Where converted built-in / SimBench nets are cached as pandapower JSON; default
        `default_cache_dir`.

    Returns
    -------
    pandapowerNet
        A fresh net (callers may modify it; the cache is never touched again).

    Raises
    ------
    InputError
        Unknown scheme, unknown built-in name or SimBench code, missing or malformed file.
    """
    scheme, _, rest = source.partition(":")
    rest = rest.strip()
    if not rest or scheme not in ("pandapower", "simbench", "file"):
        raise InputError(
            f"network.source: '{source}' must be 'pandapower:NAME', 'simbench:CODE' or 'file:PATH'"
        )
    if scheme == "file":
        path = Path(rest)
        if not path.is_absolute():
            path = Path(base_dir) / path
        return read_network_json(path)
    build = _builder(scheme, rest)
    return _cached(f"{scheme}_{rest}", build, cache_dir or default_cache_dir())


def read_network_json(path: Path) -> pandapowerNet:
    """Read a pandapower JSON file safely (no pickle, only allow-listed embedded objects).

    Raises
    ------
    InputError
        The file is missing, is not JSON, embeds a disallowed object, or is not a pandapower net.
    """
    import pandapower as pp

    if not path.is_file():
        raise InputError(f"network.source: file '{path}' not found")
    try:
        text = path.read_text(encoding="utf-8")
        json.loads(text, object_hook=_refuse_foreign_objects)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"network.source: file '{path}' is not valid JSON ({exc})") from None
    except _ForeignObjectError as exc:
        raise InputError(f"network.source: file '{path}' embeds a disallowed object: {exc}") from None
    try:
        net = pp.from_json_string(text)
    except Exception as exc:  # pandapower raises many types for malformed content
        raise InputError(
            f"network.source: file '{path}' is not a pandapower net ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(net, pp.pandapowerNet) or "bus" not in net or len(net.bus) == 0:
        raise InputError(f"network.source: file '{path}' is not a pandapower net with buses")
    if len(net.ext_grid) == 0 or not net.ext_grid.in_service.any():
        raise InputError(f"network.source: file '{path}' has no in-service ext_grid (slack)")
    return net


class _ForeignObjectError(ValueError):
    pass


def _refuse_foreign_objects(obj: dict) -> dict:
    module = obj.get("_module")
    if isinstance(module, str) and module.split(".")[0] not in _ALLOWED_JSON_MODULES:
        raise _ForeignObjectError(f"module '{module}' (class '{obj.get('_class')}')")
    # pandapower decodes JSON nested as a string in `_object` later, importing the modules it
    # names; scan that too.
    inner = obj.get("_object")
    if isinstance(inner, str) and inner.lstrip()[:1] in ("{", "["):
        try:
            json.loads(inner, object_hook=_refuse_foreign_objects)
        except json.JSONDecodeError:
            pass  # not JSON: pandapower reads it as plain data
    return obj


def _builder(scheme: str, name: str) -> Callable[[], pandapowerNet]:
    if scheme == "pandapower" and name in IEEE_EUROPEAN_LV_NETWORKS:
        return lambda: build_ieee_european_lv(IEEE_EUROPEAN_LV_NETWORKS[name])
    if scheme == "pandapower":
        if name not in PANDAPOWER_NETWORKS:
            known = ", ".join(sorted(PANDAPOWER_NETWORKS) + sorted(IEEE_EUROPEAN_LV_NETWORKS))
            raise InputError(f"network.source: unknown pandapower network '{name}'; known: {known}")
        function_name, kwargs = PANDAPOWER_NETWORKS[name]

        def build() -> pandapowerNet:
            import pandapower.networks as pn

            return getattr(pn, function_name)(**kwargs)

        return build
    import simbench as sb

    if name not in sb.collect_all_simbench_codes():
        raise InputError(
            f"network.source: unknown SimBench code '{name}' "
            "(e.g. '1-LV-rural1--0-sw', '1-MV-urban--0-sw'; see simbench.collect_all_simbench_codes())"
        )

    def build() -> pandapowerNet:
        return sb.get_simbench_net(name)

    return build


def _cache_key(name: str) -> str:
    import pandapower as pp
    import simbench as sb

    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    return f"{safe}__pp{pp.__version__}__sb{sb.__version__}.json"


def _cached(name: str, build: Callable[[], pandapowerNet], cache_dir: Path) -> pandapowerNet:
    import pandapower as pp

    path = Path(cache_dir) / _cache_key(name)
    if path.is_file():
        try:
            return pp.from_json(str(path))
        except Exception:  # a corrupt cache entry is rebuilt, never trusted
            path.unlink(missing_ok=True)
    net = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            pp.to_json(net, tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError:
        pass  # read-only or full cache: the net is still returned, just not cached
    return net


CUSTOMER_LOAD_NAME = "gridflex customers"
"""Name of the load elements `ensure_loads` creates for customers on buses without a load."""


def ensure_loads(net: pandapowerNet, buses: np.ndarray) -> np.ndarray:
    """Load element of each bus, creating an empty one where a bus has no in-service load.

    Customers read from a CSV may sit on buses the feeder has no load element for; their demand
    needs an element to enter the power flow. A created load has ``p_mw = q_mvar = 0`` (the
    customers' profiles set it per step), ``scaling = 1`` and the name `CUSTOMER_LOAD_NAME`.
    Where a bus has several in-service loads the lowest index is used, so repeated calls
    return the same elements.

    Parameters
    ----------
    net
        The feeder; ``net.load`` is extended in place.
    buses
        ``[n]`` pandapower bus indices (repeats allowed).

    Returns
    -------
    np.ndarray
        ``[n]`` int64 ``net.load`` index of a load on each bus.

    Raises
    ------
    InputError
        A bus is not in ``net.bus``.
    """
    import pandapower as pp

    buses = np.asarray(buses, dtype=np.int64).ravel()
    unknown = ~np.isin(buses, net.bus.index.to_numpy())
    if unknown.any():
        raise InputError(f"customers: bus {int(buses[unknown][0])} is not a bus of the network")
    active = net.load[net.load.in_service.astype(bool)]
    load_of_bus = {int(bus): int(idx) for idx, bus in
                   sorted(zip(active.index, active.bus.astype(np.int64), strict=True), reverse=True)}
    for bus in np.unique(buses):
        if int(bus) not in load_of_bus:
            load_of_bus[int(bus)] = int(
                pp.create_load(net, bus=int(bus), p_mw=0.0, q_mvar=0.0, name=CUSTOMER_LOAD_NAME)
            )
    return np.array([load_of_bus[int(bus)] for bus in buses], dtype=np.int64)
