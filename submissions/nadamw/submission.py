"""NAdamW, AlgoPerf's baseline: linear warmup over warmup_factor * step_hint, cosine decay to zero at
step_hint, decoupled weight decay, label smoothing, dropout, optional gradient clipping.

Self-tuning (hyperparameters=None) uses the first point of the external search space.
"""

from precond import NAdamW
from submissions import glue
from submissions.nadamw.options import OPTIONS, SELF_TUNING_DEFAULTS


def _build(model, param_types, hp, hyperparameters):
    return NAdamW(
        model.named_parameters(), lr=hp.learning_rate, betas=hp.betas, weight_decay=hp.weight_decay, **OPTIONS
    )


HYPERPARAMETERS = glue.hyperparameters(_build)
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
