"""KrADagradStar's options and self-tuning defaults, stated once for both frameworks: ``submission.py`` (PyTorch) and
``submission_jax.py`` (JAX) import them."""

from submissions import recipe, routing

SELF_TUNING_DEFAULTS = recipe.TrainingHParams(
    learning_rate=1.0, one_minus_beta1=0.1, beta2=1.0, weight_decay=5e-4, warmup_factor=0.05, label_smoothing=0.1
)
OPTIONS = dict(precondition_frequency=100, start_preconditioning_step=100, max_preconditioner_dim=1024, eps=1e-4)
ROUTING = routing.Policy(precondition_embeddings=False)  # tables: diagonal (submissions/README.md "Parameter routing")
