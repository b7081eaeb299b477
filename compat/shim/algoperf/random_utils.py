"""``algoperf.random_utils`` for the PyTorch framework: numpy-emulated JAX keys."""

from compat.prng import PRNGKey, fold_in, split  # noqa: F401
