"""Comparison benchmarks against Temporal and DBOS: ``python -m bench.compare`` (see README.md)."""
