"""Low-level pieces every layer shares (errors, atomic writes, locks, flag checks, search spaces).

Imports nothing of kronbench: runner, tuning and scoring build on it, never the other way round.
"""
