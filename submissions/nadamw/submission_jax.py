"""NAdamW, AlgoPerf's baseline, in JAX: ``precond_jax.nadamw`` (AlgoPerf's NAdamW) with the options, defaults and
search space of the PyTorch ``submission.py`` beside it, over the JAX glue."""

import precond_jax
from submissions import glue_jax
from submissions.nadamw.options import OPTIONS, SELF_TUNING_DEFAULTS


def _build(params, param_types, hp, hyperparameters, learning_rate):
    return precond_jax.nadamw(learning_rate, betas=hp.betas, weight_decay=hp.weight_decay, **OPTIONS)


HYPERPARAMETERS = glue_jax.hyperparameters(_build)
get_batch_size, init_optimizer_state, update_params, data_selection = glue_jax.make_submission(
    _build, SELF_TUNING_DEFAULTS
)
