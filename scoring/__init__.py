"""Scoring: time to target, best trials, performance profiles, the AlgoPerf score, speedups, plots and reports."""
