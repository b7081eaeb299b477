"""Benchmarks (`make bench`): each prints ratios measured in one run, since absolute times here are noisy."""
