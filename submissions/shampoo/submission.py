"""Shampoo as the AlgoPerf v0.5 winner ran it: the NAdamW baseline's hyperparameters, Shampoo's direction grafted
to Adam per block, max_preconditioner_dim 1024, roots refreshed every 100 steps from step 100, epsilon 1e-8, fp32
factors, Nesterov first moment, warmup + cosine, decoupled weight decay, tables of 1e6+ rows on Adam."""

from precond import Shampoo
from submissions import glue, routing

SELF_TUNING_DEFAULTS = glue.BASELINE_DEFAULTS
OPTIONS = dict(
    precondition_frequency=100,
    start_preconditioning_step=100,
    max_preconditioner_dim=1024,
    eps=1e-8,
    grafting="adam",
    factor_dtype="float32",
)
ROUTING = routing.Policy(precondition_embeddings=False)  # tables: diagonal (submissions/README.md "Parameter routing")

_build = glue.kronecker(Shampoo, ROUTING, **OPTIONS)
HYPERPARAMETERS = glue.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
