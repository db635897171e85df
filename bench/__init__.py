"""Benchmarks: `make bench` (or `python -m bench --help`). Figures go into docs/benchmarks.md, the
headline ones into the README."""
