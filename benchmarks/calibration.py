"""A fixed calibration workload, timed in the same process right next to every benchmark.

Benchmark times are stored and gated as ratios ``case time ÷ calibration time``, so that a faster
or slower machine (or a busier moment on a shared one) does not read as a regression. The
workload never changes with the project's code: it mixes the three kinds of work the suite
measures — interpreted Python building objects (the Pyomo build), NumPy streaming arithmetic
(load synthesis, power-flow post-processing) and a compiled sparse factorisation (the solvers)
— in roughly equal parts. Changing it invalidates `benchmarks/baseline.json`; bump
`CALIBRATION_VERSION` and re-record (``make bench-baseline``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

CALIBRATION_VERSION = 1
#: Timed repeats of the workload per measurement; the minimum is kept (noise only adds time).
CALIBRATION_REPEATS = 5

_PYTHON_ITEMS = 6_000
_NUMPY_LENGTH = 1 << 18
_GRID_SIDE = 55


def _python_part() -> int:
    """Dictionary inserts, string formatting and a keyed sort: the shape of a model build.

    Only untracked objects (ints, floats, str) are created, so the garbage collector's timing
    does not add noise.
    """
    n = _PYTHON_ITEMS
    table: dict[int, float] = {}
    for i in range(n):
        table[(i * 7919) % n] = i * 0.5
    names = [f"x[{i},{i % 12}]" for i in range(n)]
    order = sorted(range(n), key=table.__getitem__, reverse=True)
    return sum(len(names[i]) for i in order[: n // 2])


def _numpy_part(data: np.ndarray) -> float:
    """Elementwise arithmetic and reductions over a few MB (memory-bandwidth bound)."""
    y = np.sqrt(data * data + 1.0)
    y = np.where(y > 1.5, y - 0.5, y * 1.1)
    return float(np.cumsum(y)[-1] + np.abs(np.diff(y)).sum())


def _sparse_part(matrix: sp.csc_matrix, rhs: np.ndarray) -> float:
    """Sparse LU of a 2-D five-point Laplacian and one solve (compiled SuperLU)."""
    lu = spla.splu(matrix)
    return float(lu.solve(rhs)[0])


def _inputs() -> tuple[np.ndarray, sp.csc_matrix, np.ndarray]:
    rng = np.random.default_rng(20_160_101)
    data = rng.standard_normal(_NUMPY_LENGTH)
    side = _GRID_SIDE
    ones = np.ones(side)
    line = sp.diags([-ones[:-1], 4.0 * ones, -ones[:-1]], [-1, 0, 1])
    eye = sp.identity(side)
    coupling = sp.diags([-ones[:-1], -ones[:-1]], [-1, 1])
    laplacian = (sp.kron(eye, line) + sp.kron(coupling, eye)).tocsc()
    return data, laplacian, rng.standard_normal(side * side)


_INPUTS: tuple[np.ndarray, sp.csc_matrix, np.ndarray] | None = None


def run_workload() -> float:
    """Run the calibration workload once; returns a checksum (so nothing is optimised away)."""
    global _INPUTS
    if _INPUTS is None:
        _INPUTS = _inputs()
    data, laplacian, rhs = _INPUTS
    return _python_part() + _numpy_part(data) + _sparse_part(laplacian, rhs)


def measure_calibration(repeats: int = CALIBRATION_REPEATS,
                        timer: Callable[[], float] = time.perf_counter) -> float:
    """Minimum time of ``repeats`` runs of the workload [s] (after one untimed warm-up), on
    ``timer`` — the clock the benchmarks themselves use (wall, or process CPU time)."""
    run_workload()
    best = np.inf
    for _ in range(repeats):
        start = timer()
        run_workload()
        best = min(best, timer() - start)
    return float(best)
