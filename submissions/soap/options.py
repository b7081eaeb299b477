"""SOAP's options and self-tuning defaults, stated once for both frameworks: ``submission.py`` (PyTorch) and
``submission_jax.py`` (JAX) import them."""

from submissions import recipe, routing

SELF_TUNING_DEFAULTS = recipe.BASELINE_DEFAULTS
OPTIONS = dict(precondition_frequency=10, start_preconditioning_step=10, max_preconditioner_dim=1024, eps=1e-8)
ROUTING = routing.Policy(precondition_embeddings=False)  # tables: diagonal (submissions/README.md "Parameter routing")
