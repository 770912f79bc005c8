"""Benchmarks, profiling and calibration: speed and cost of training, equivalence checks (see reproduce/README.md)."""
