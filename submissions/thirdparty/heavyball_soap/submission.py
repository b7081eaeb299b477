"""HeavyBall's SOAP (``heavyball.SOAP``, 3.2.1; ``ForeachSOAP`` in HeavyBall 1.x) under kronbench's recipe: Adam in
the eigenbasis of Shampoo's factors, bases refreshed by HeavyBall's power-iteration + QR step, run eagerly
(``heavyball_setup``). Unpreconditioned parameters (norms, biases, tables) are a group with
``max_precond_dim=0``: every dimension past the limit, so HeavyBall's Adam in the identity basis."""

from submissions import glue
from submissions.thirdparty import adapter
from submissions.thirdparty.heavyball_setup import heavyball
from submissions.thirdparty.heavyball_soap.options import OPTIONS, ROUTING, SELF_TUNING_DEFAULTS


def _soap(groups, hp, shampoo_beta, **options):
    return heavyball.SOAP(
        [adapter.unpreconditioned_group(g, max_precond_dim=0) for g in groups],
        lr=hp.learning_rate,
        betas=hp.betas,
        weight_decay=hp.weight_decay,
        shampoo_beta=hp.beta2 if shampoo_beta < 0 else shampoo_beta,
        **options,
    )


_build = adapter.optimizer(_soap, ROUTING, **OPTIONS)
HYPERPARAMETERS = adapter.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
