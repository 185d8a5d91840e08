"""The `fmb` application: the command line, the quickstart pipeline and the benchmarks, on top of
every layer (`cad` <- `sim` <- `policies` <- `fmb_ros`). Nothing below imports it; the errors and
checks every layer shares live in :mod:`fmb_core`.
"""
