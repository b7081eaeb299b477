"""AlgoPerf Workload API implementations on real offline data, and the registry that names them."""

import compat  # noqa: F401  (so `from algoperf import spec` resolves)
