"""Benchmarks: each prints its figures, the raw baselines beside them and the ratios.

Never timed assertions in tests: run them by hand (``python bench/<name>.py``).
"""
