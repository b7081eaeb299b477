"""``algoperf.random_utils``: real ``jax.random`` keys when the framework is JAX, the numpy emulation
(``compat.prng``) for PyTorch.

As in AlgoPerf, the framework is the ``--framework`` absl flag when a runner defined and parsed it; a caller
without that flag (a test, a library user) sets ``FRAMEWORK``. jax is imported only when JAX keys are asked for.
"""

from absl import flags

from compat import prng

FRAMEWORK: str | None = None  # None: the parsed --framework flag, else "pytorch"


def framework() -> str:
    if FRAMEWORK is not None:
        return FRAMEWORK
    if "framework" in flags.FLAGS and flags.FLAGS.is_parsed():
        return flags.FLAGS.framework
    return "pytorch"


def _jax_random():
    import jax.random

    return jax.random


def fold_in(seed, data: int):
    if framework() == "jax":
        return _jax_random().fold_in(seed, data)
    return prng.fold_in(seed, data)


def split(seed, num: int = 2):
    if framework() == "jax":
        return _jax_random().split(seed, num)
    return prng.split(seed, num)


def PRNGKey(seed: int):  # noqa: N802 - the name JAX and AlgoPerf use
    if framework() == "jax":
        return _jax_random().PRNGKey(seed)
    return prng.PRNGKey(seed)
