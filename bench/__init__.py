"""Benchmarks: each measures against a baseline taken in the same run and prints ratios.

Run one with `python -m bench.<name>` (or `make bench` for all); see README.md for figures.
"""
