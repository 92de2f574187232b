"""Benchmarks: figures are printed beside a baseline measured in the same run."""
