"""Benchmarks: each script starts what it needs, measures, and prints its figures."""
