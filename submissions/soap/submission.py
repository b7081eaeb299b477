"""SOAP (Vyas et al. 2024): Adam in the eigenbasis with the first moment kept there, bases refreshed every 10 steps
by one power-iteration + QR step. No grafting: the NAdamW baseline's points are reused."""

from precond import SOAP
from submissions import glue
from submissions.soap.options import OPTIONS, ROUTING, SELF_TUNING_DEFAULTS

_build = glue.kronecker(SOAP, ROUTING, **OPTIONS)
HYPERPARAMETERS = glue.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
