"""Diagonal methods (grafting directions and the fallback for 1-D parameters), as ``precond.grafting``.

Pure functions: ``direction`` returns the direction and the method's new state. The formulas are written as
optax writes them (``(1 - b) g^2 + b v``, ``v / (1 - b^t)``), so that with preconditioning off the "adam"
method reproduces ``optax.adamw`` bit for bit.
"""

import jax
import jax.numpy as jnp

from precond.config import METHODS


def init_state(method: str, like: jax.Array) -> dict:
    if method not in METHODS:
        raise ValueError(f"unknown grafting/diagonal method {method!r}; use one of {', '.join(METHODS)}")
    return {} if method == "sgd" else {"second_moment": jnp.zeros_like(like)}


def increment(count: jax.Array) -> jax.Array:
    """The int32 step count plus one, saturating at its maximum, as optax's ``safe_increment`` (optax >= 0.2.3;
    written here so that precond_jax runs on optax 0.2.2, AlgoPerf's pin)."""
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def bias_correction(beta: float, count: jax.Array, dtype) -> jax.Array:
    """1 - beta^t computed as optax computes it, then cast to ``dtype``."""
    return (1 - beta**count).astype(dtype)


def direction(method: str, state: dict, m: jax.Array, g: jax.Array, count: jax.Array, beta2: float, eps: float):
    """(direction, new state) of the diagonal method at step ``count`` (1-based)."""
    if method == "sgd":
        return m, state
    v = state["second_moment"]
    if method == "adagrad":
        v = v + g * g
        denom = jnp.sqrt(v)
    else:
        v = (1 - beta2) * (g**2) + beta2 * v
        denom = jnp.sqrt(v) if method == "rmsprop" else jnp.sqrt(v / bias_correction(beta2, count, v.dtype))
    return m / (denom + eps), {"second_moment": v}
