"""SOAP (Vyas et al. 2024): Adam in the eigenbasis with the first moment kept there, bases refreshed every 10 steps
by one power-iteration + QR step. No grafting: the NAdamW baseline's points are reused."""

from precond import SOAP
from submissions import glue, routing

SELF_TUNING_DEFAULTS = glue.BASELINE_DEFAULTS
OPTIONS = dict(precondition_frequency=10, start_preconditioning_step=10, max_preconditioner_dim=1024, eps=1e-8)
ROUTING = routing.Policy(precondition_embeddings=False)  # tables: diagonal (submissions/README.md "Parameter routing")

_build = glue.kronecker(SOAP, ROUTING, **OPTIONS)
HYPERPARAMETERS = glue.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
