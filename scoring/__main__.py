"""``python -m scoring``."""

import compat  # noqa: F401  (targets of official workloads come from algoperf when it is installed)
from scoring.cli import main

main()
