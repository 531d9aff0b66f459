"""SQL used only by the benchmarks."""
