"""The kronbench submission runner: AlgoPerf's clock, eval cadence, budgets, logs and checkpoints."""

import compat  # noqa: F401  (makes `import algoperf` resolve before any submission is loaded)
