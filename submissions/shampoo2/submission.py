"""Shampoo^2 (Morwani et al. 2024): L^(-1/2) G R^(-1/2) on trace-scaled factors, grafted to Adam per block, so the
NAdamW baseline's hyperparameters transfer; otherwise the Shampoo submission's recipe. eps 1e-4 (see precond)."""

from precond import Shampoo2
from submissions import glue
from submissions.shampoo2.options import OPTIONS, ROUTING, SELF_TUNING_DEFAULTS

_build = glue.kronecker(Shampoo2, ROUTING, **OPTIONS)
HYPERPARAMETERS = glue.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
