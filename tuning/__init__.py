"""Tuning: search spaces, seeded quasi-random sampling, campaign planning, manifests and executors."""
