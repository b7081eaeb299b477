"""KrADagrad* (Mei, Moreno, Walters 2023): every inverse factor updated every step, X^(1/4) roots, the direction
rescaled to the momentum's norm (an SGD-sized step), so its learning rates are SGD's, not Adam's: see
tuning_search_space.json and submissions/README.md. Factor statistics are sums (beta2 = 1), as in the paper."""

from precond import KrADagradStar
from submissions import glue, routing

SELF_TUNING_DEFAULTS = glue.TrainingHParams(
    learning_rate=1.0, one_minus_beta1=0.1, beta2=1.0, weight_decay=5e-4, warmup_factor=0.05, label_smoothing=0.1
)
OPTIONS = dict(precondition_frequency=100, start_preconditioning_step=100, max_preconditioner_dim=1024, eps=1e-4)
ROUTING = routing.Policy(precondition_embeddings=False)  # tables: diagonal (submissions/README.md "Parameter routing")

_build = glue.kronecker(KrADagradStar, ROUTING, **OPTIONS)
HYPERPARAMETERS = glue.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
