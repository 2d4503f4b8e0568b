"""maintd benchmarks: ``python -m bench`` (see docs/benchmarks.md).

Not pytest tests: they measure, print a table and exit non-zero when a target is missed.
"""
