"""Shampoo as the AlgoPerf v0.5 winner ran it: the NAdamW baseline's hyperparameters, Shampoo's direction grafted
to Adam per block, max_preconditioner_dim 1024, roots refreshed every 100 steps from step 100, epsilon 1e-8, fp32
factors, Nesterov first moment, warmup + cosine, decoupled weight decay, tables of 1e6+ rows on Adam."""

from precond import Shampoo
from submissions import glue
from submissions.shampoo.options import OPTIONS, ROUTING, SELF_TUNING_DEFAULTS

_build = glue.kronecker(Shampoo, ROUTING, **OPTIONS)
HYPERPARAMETERS = glue.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
