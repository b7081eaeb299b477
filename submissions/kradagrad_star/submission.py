"""KrADagrad* (Mei, Moreno, Walters 2023): every inverse factor updated every step, X^(1/4) roots, the direction
rescaled to the momentum's norm (an SGD-sized step), so its learning rates are SGD's, not Adam's: see
tuning_search_space.json and submissions/README.md. Factor statistics are sums (beta2 = 1), as in the paper."""

from precond import KrADagradStar
from submissions import glue
from submissions.kradagrad_star.options import OPTIONS, ROUTING, SELF_TUNING_DEFAULTS

_build = glue.kronecker(KrADagradStar, ROUTING, **OPTIONS)
HYPERPARAMETERS = glue.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
