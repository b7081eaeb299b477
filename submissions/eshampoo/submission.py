"""Eigenvalue-corrected ("purified") Shampoo (Eschenhagen et al. 2025): Adam in the Kronecker factors' eigenbasis,
no grafting (Adam's learning rate transfers, so the NAdamW baseline's points are reused), and the adaptive
refresh of the paper: every 50 steps a block factor's basis is recomputed only if its criterion exceeds 0.1."""

from precond import EShampoo
from submissions import glue
from submissions.eshampoo.options import OPTIONS, ROUTING, SELF_TUNING_DEFAULTS

_build = glue.kronecker(EShampoo, ROUTING, **OPTIONS)
HYPERPARAMETERS = glue.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
