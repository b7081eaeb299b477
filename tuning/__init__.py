"""Tuning: search spaces, seeded quasi-random sampling, and (later) campaigns and executors."""
