"""Radial topology of a pandapower net, for the optimizer's feeder limits.

Reads only the element tables (no pandapower import): in-service buses, lines, two-winding
transformers and switches. Closed bus-bus switches fuse their buses; an open line or trafo switch
disconnects that branch at that end (as pandapower does in power flow). The energized part seen
from the in-service ext_grids must be a tree once parallel branches (same pair of buses) are
counted as one; a closed loop raises `TopologyError` naming a branch that closes it, because the
optimizer's linear feeder model (each line carries the load of every bus downstream of it) is
exact only for radial operation.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scenarios.errors import InputError


class TopologyError(InputError):
    """The switched network is not radial, or has no slack."""


@dataclass(frozen=True)
class RadialTree:
    """Spanning tree of the energized network, rooted at the ext_grid bus(es).

    ``parent_bus[b]`` is the upstream neighbour of bus ``b`` (-1 for roots and unenergized
    buses), ``parent_lines[b]`` / ``parent_trafos[b]`` the (parallel) line / trafo indices of
    the branch between them, ``order`` the energized buses from the root outward.
    """

    buses: pd.Index
    parent_bus: dict[int, int]
    parent_lines: dict[int, tuple[int, ...]]
    parent_trafos: dict[int, tuple[int, ...]]
    order: tuple[int, ...]


def _open_ends(net, element: str) -> set[int]:
    switch = net.switch
    mask = (switch.et == element) & ~switch.closed.astype(bool)
    return set(switch.element[mask].astype(int))


def _fused_buses(net) -> dict[int, int]:
    """Closed bus-bus switches → representative bus of each fused group (union-find)."""
    rep = {int(b): int(b) for b in net.bus.index[net.bus.in_service.astype(bool)]}

    def find(b: int) -> int:
        while rep[b] != b:
            rep[b] = rep[rep[b]]
            b = rep[b]
        return b

    switch = net.switch
    bb = switch[(switch.et == "b") & switch.closed.astype(bool)]
    for a, b in zip(bb.bus.astype(int), bb.element.astype(int), strict=True):
        if a in rep and b in rep:
            ra, rb = find(a), find(b)
            if ra != rb:
                rep[max(ra, rb)] = min(ra, rb)
    return {b: find(b) for b in rep}


def build_radial_tree(net) -> RadialTree:
    """Spanning tree of the energized, switched network (see the module docstring).

    Raises
    ------
    TopologyError
        No in-service ext_grid, or a closed loop (names one line/trafo closing it).
    """
    fused = _fused_buses(net)
    eg = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    roots = sorted({fused[int(b)] for b in eg.bus if int(b) in fused})
    if not roots:
        raise TopologyError("network: no in-service ext_grid on an in-service bus")

    # Branches between fused groups, parallel branches merged into one edge.
    edges: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
    open_lines, open_trafos = _open_ends(net, "l"), _open_ends(net, "t")
    for kind, table, a_col, b_col, opened in (
        ("line", net.line, "from_bus", "to_bus", open_lines),
        ("trafo", net.trafo, "hv_bus", "lv_bus", open_trafos),
    ):
        live = table[table.in_service.astype(bool)]
        for idx, a, b in zip(live.index, live[a_col].astype(int), live[b_col].astype(int), strict=True):
            if idx in opened or a not in fused or b not in fused:
                continue
            ga, gb = fused[a], fused[b]
            if ga == gb:
                continue  # a branch inside one fused group carries nothing
            key = (min(ga, gb), max(ga, gb))
            lines, trafos = edges.setdefault(key, ([], []))
            (lines if kind == "line" else trafos).append(int(idx))

    neighbours: dict[int, list[tuple[int, tuple[int, int]]]] = {}
    for key in edges:
        a, b = key
        neighbours.setdefault(a, []).append((b, key))
        neighbours.setdefault(b, []).append((a, key))

    parent: dict[int, int] = {r: -1 for r in roots}
    parent_edge: dict[int, tuple[int, int] | None] = {r: None for r in roots}
    order: list[int] = []
    queue = deque(roots)
    while queue:
        g = queue.popleft()
        order.append(g)
        for other, key in neighbours.get(g, []):
            if key == parent_edge[g]:
                continue
            if other in parent:
                lines, trafos = edges[key]
                what = f"line {lines[0]}" if lines else f"trafo {trafos[0]}"
                raise TopologyError(
                    f"network: not radial — {what} closes a loop (open a switch to operate it radially)"
                )
            parent[other] = g
            parent_edge[other] = key
            queue.append(other)

    parent_bus: dict[int, int] = {}
    parent_lines: dict[int, tuple[int, ...]] = {}
    parent_trafos: dict[int, tuple[int, ...]] = {}
    for bus, g in fused.items():
        if g not in parent:
            parent_bus[bus] = -1
            parent_lines[bus] = ()
            parent_trafos[bus] = ()
            continue
        key = parent_edge[g]
        if bus != g:  # a fused member hangs on its representative without a branch
            parent_bus[bus], parent_lines[bus], parent_trafos[bus] = g, (), ()
            continue
        parent_bus[bus] = parent[g]
        lines, trafos = edges[key] if key is not None else ([], [])
        parent_lines[bus], parent_trafos[bus] = tuple(lines), tuple(trafos)
    member_order = [b for g in order for b in sorted(x for x, r in fused.items() if r == g)]
    return RadialTree(
        buses=net.bus.index,
        parent_bus=parent_bus,
        parent_lines=parent_lines,
        parent_trafos=parent_trafos,
        order=tuple(member_order),
    )


def feeding_trafo(net) -> pd.Series:
    """Transformer that feeds each bus from the slack side (the last one on its path).

    Parallel transformers: the lowest index of the group. -1 for buses with no transformer
    between them and the slack, and for unenergized buses.

    Returns
    -------
    pd.Series
        int64, indexed like ``net.bus``, name ``"trafo"``.
    """
    tree = build_radial_tree(net)
    result = pd.Series(-1, index=net.bus.index, dtype=np.int64, name="trafo")
    for bus in tree.order:
        up = tree.parent_bus[bus]
        trafos = tree.parent_trafos[bus]
        if trafos:
            result[bus] = min(trafos)
        elif up >= 0:
            result[bus] = result[up]
    return result


def upstream_lines(net) -> sp.csr_matrix:
    """Incidence of lines on the slack-to-bus path: ``[bus × line]``, 1 where the line is on it.

    Rows follow ``net.bus.index``, columns ``net.line.index``. Parallel lines are all marked.
    The load of bus ``b`` flows through every line ``l`` with ``A[b, l] = 1`` (radial feeder).
    """
    tree = build_radial_tree(net)
    bus_pos = {int(b): i for i, b in enumerate(net.bus.index)}
    line_pos = {int(line): j for j, line in enumerate(net.line.index)}
    upstream: dict[int, tuple[int, ...]] = {}
    rows: list[int] = []
    cols: list[int] = []
    for bus in tree.order:
        up = tree.parent_bus[bus]
        path = (upstream[up] if up >= 0 else ()) + tuple(line_pos[x] for x in tree.parent_lines[bus])
        upstream[bus] = path
        rows.extend([bus_pos[bus]] * len(path))
        cols.extend(path)
    data = np.ones(len(rows), dtype=np.float64)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(net.bus), len(net.line)))
