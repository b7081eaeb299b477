"""HeavyBall's PSGD-Kron (``heavyball.PSGDKron``, 3.2.1; ``ForeachPSGDKron`` in HeavyBall 1.x) under kronbench's
recipe: Li's Kronecker-factored preconditioner Q, fitted on the Lie group from Hessian-vector-free probes, applied
as Q^T Q to the momentum, run eagerly (``heavyball_setup``). Unpreconditioned parameters (norms, biases, tables)
are a group with ``max_size_triangular=0``: every factor diagonal, PSGD's diagonal method."""

from submissions import glue
from submissions.thirdparty import adapter
from submissions.thirdparty.heavyball_psgd_kron.options import OPTIONS, ROUTING, SELF_TUNING_DEFAULTS
from submissions.thirdparty.heavyball_setup import heavyball


def _psgd_kron(groups, hp, **options):
    return heavyball.PSGDKron(
        [adapter.unpreconditioned_group(g, max_size_triangular=0) for g in groups],
        lr=hp.learning_rate,
        betas=hp.betas,
        weight_decay=hp.weight_decay,
        **options,
    )


_build = adapter.optimizer(_psgd_kron, ROUTING, **OPTIONS)
HYPERPARAMETERS = adapter.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
