"""Scripts that regenerate the paper tables (one per table) and the benchmarks."""
