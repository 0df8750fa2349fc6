"""Benchmarks: engine speed (perf) and the cost/accuracy harness."""
