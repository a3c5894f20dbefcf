"""Benchmarks behind `tournament bench`; each module returns rows, the CLI prints and records them."""
