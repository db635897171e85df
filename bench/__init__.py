"""Benchmarks: `make bench` (or `python -m bench --help`). Figures go into the README."""
