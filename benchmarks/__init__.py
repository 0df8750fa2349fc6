"""Benchmark and experiment scripts (python -m benchmarks.NAME): not part of the installed package."""
