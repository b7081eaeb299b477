"""AlgoPerf submissions, one folder each, and the glue they share (``submissions.glue``)."""

import compat  # noqa: F401  (so `from algoperf import spec` resolves)
