"""HeavyBall PSGD-Kron's options, by HeavyBall's names: its defaults (preconditioner fitted with step 0.1 on the
Lie group, update probability annealed from 1 to 0.03, HeavyBall's trust-region clipping of the update) except
triangular factors for dimensions up to 1024, kronbench's block size, and diagonal ones past it."""

from submissions import recipe, routing

SELF_TUNING_DEFAULTS = recipe.BASELINE_DEFAULTS
OPTIONS = dict(max_size_triangular=1024, min_ndim_triangular=2, precond_lr=0.1, momentum_into_precond_update=True)
ROUTING = routing.Policy(precondition_embeddings=False)  # tables: PSGD's diagonal preconditioner
