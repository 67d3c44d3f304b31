"""Benchmarks, each runnable as `python -m ftk.bench.<name>`, printing a table of figures and ratios."""
