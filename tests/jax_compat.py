"""What the JAX tests need across the supported JAX versions (>= 0.7, AlgoPerf's pin, to the latest)."""

import jax


def enable_x64():
    """A context manager with 64-bit JAX inside: ``jax.enable_x64`` (JAX >= 0.8) or, before it,
    ``jax.experimental.enable_x64``."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64 as experimental_enable_x64

    return experimental_enable_x64()
