"""The shampoo2 submission in JAX: ``precond_jax.shampoo2`` over the JAX glue, with the options, defaults
and search space of the PyTorch ``submission.py`` beside it (see its docstring)."""

import precond_jax
from submissions import glue_jax
from submissions.shampoo2.options import OPTIONS, ROUTING, SELF_TUNING_DEFAULTS

_build = glue_jax.kronecker(precond_jax.shampoo2, ROUTING, **OPTIONS)
HYPERPARAMETERS = glue_jax.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue_jax.make_submission(
    _build, SELF_TUNING_DEFAULTS
)
