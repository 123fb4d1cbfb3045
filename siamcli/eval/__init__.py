"""Dataset readers, metrics and the benchmark runner."""
