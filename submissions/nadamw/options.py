"""NAdamW's options and self-tuning defaults, stated once for both frameworks: ``submission.py`` (PyTorch) and
``submission_jax.py`` (JAX) import them."""

from submissions import recipe

SELF_TUNING_DEFAULTS = recipe.BASELINE_DEFAULTS
OPTIONS = dict(eps=1e-8)
