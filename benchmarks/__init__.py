"""gridflex performance suite: pytest-benchmark cases per phase, peers in the same run, a
calibration workload, a stored baseline and a regression gate (see ``benchmarks/README.md``).

Run explicitly (``make bench-quick``, ``make bench``, ``make bench-check``); ``make test``
never collects it (``testpaths = ["tests"]``).
"""
