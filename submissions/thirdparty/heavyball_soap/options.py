"""HeavyBall SOAP's options, by HeavyBall's names, set to kronbench soap's where the library has the knob: bases
refreshed every 10 steps, blocks up to 1024, eps 1e-8, factor statistics averaged with beta2 (``shampoo_beta``
-1, as the SOAP authors' code spells it; HeavyBall's own default is 0.95)."""

from submissions import recipe, routing

SELF_TUNING_DEFAULTS = recipe.BASELINE_DEFAULTS
OPTIONS = dict(precondition_frequency=10, max_precond_dim=1024, eps=1e-8, shampoo_beta=-1.0)
ROUTING = routing.Policy(precondition_embeddings=False)  # as kronbench's soap: tables take its Adam
