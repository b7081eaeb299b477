"""Meta's Distributed Shampoo (facebookresearch/optimizers, ``distributed_shampoo``) under kronbench's recipe, built
from the library's own configuration classes: Shampoo's inverse roots by eigendecomposition (its default), grafted to
Adam (``AdamPreconditionerConfig``); one process, or blocks shared across ranks under DDP
(``DDPDistributedConfig``). Unpreconditioned parameters (norms, biases, tables) are a group whose preconditioner is
the grafting's Adam itself. The library is not on PyPI: it must be importable (see ``HOW_TO_GET``)."""

from submissions import glue
from submissions.thirdparty import adapter
from submissions.thirdparty.meta_shampoo.options import OPTIONS, ROUTING, SELF_TUNING_DEFAULTS

HOW_TO_GET = (
    "put its distributed_shampoo package on PYTHONPATH: git clone https://github.com/facebookresearch/optimizers "
    "and pass PYTHONPATH=optimizers (tested at commit f6066066)"
)
ds = adapter.library("distributed_shampoo", HOW_TO_GET)


def _shampoo(groups, hp, grafting_epsilon, nesterov, **options):
    adam = ds.AdamPreconditionerConfig(beta2=hp.adam_betas[1], epsilon=grafting_epsilon)
    distributed = ds.DDPDistributedConfig() if glue.USE_DDP else ds.DefaultSingleDeviceDistributedConfig
    return ds.DistributedShampoo(
        [adapter.unpreconditioned_group(g, preconditioner_config=adam) for g in groups],
        lr=hp.learning_rate,
        betas=hp.betas,
        beta3=hp.betas[0] ** 2 if nesterov else -1.0,
        weight_decay=hp.weight_decay,
        weight_decay_type=ds.WeightDecayType.DECOUPLED,
        grafting_config=adam,
        preconditioner_config=ds.DefaultShampooConfig,
        distributed_config=distributed,
        **options,
    )


_build = adapter.optimizer(_shampoo, ROUTING, **OPTIONS)
HYPERPARAMETERS = adapter.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
