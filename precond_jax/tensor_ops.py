"""Kronecker products applied to stacked arrays without forming them (as ``precond.tensor_ops``).

A stack T has shape (B, d_1, ..., d_k); matrices have shape (B, d_i, d_i).
"""

import jax
import jax.numpy as jnp


def mode_product(t: jax.Array, m: jax.Array, dim: int) -> jax.Array:
    """T x_dim M: out[b, .., j, ..] = sum_l M[b, j, l] T[b, .., l, ..] along tensor dimension ``dim`` (0-based)."""
    moved = jnp.moveaxis(t, dim + 1, -1)
    shape = moved.shape
    out = moved.reshape(shape[0], -1, shape[-1]) @ jnp.swapaxes(m, -1, -2)
    return jnp.moveaxis(out.reshape(shape), -1, dim + 1)


def apply_all(t: jax.Array, mats, transpose: bool = False) -> jax.Array:
    """T x_1 M_1 x_2 M_2 ... (with M_i^T when ``transpose``)."""
    for dim, m in enumerate(mats):
        t = mode_product(t, jnp.swapaxes(m, -1, -2) if transpose else m, dim)
    return t


def unfold(t: jax.Array, dim: int) -> jax.Array:
    """The mode-``dim`` unfolding T_(dim): shape (B, d_dim, product of the other dims)."""
    return jnp.moveaxis(t, dim + 1, 1).reshape(t.shape[0], t.shape[dim + 1], -1)


def gram(t: jax.Array, dim: int, other: jax.Array | None = None) -> jax.Array:
    """T_(dim) T_(dim)^T (or T_(dim) O_(dim)^T): the contraction over every tensor dimension but ``dim``."""
    a = unfold(t, dim)
    b = a if other is None else unfold(other, dim)
    return a @ jnp.swapaxes(b, -1, -2)


def block_norms(t: jax.Array) -> jax.Array:
    """Frobenius norm of each block, shaped to broadcast against the stack: (B, 1, ..., 1)."""
    return jnp.linalg.norm(t.reshape(t.shape[0], -1), axis=1).reshape((-1,) + (1,) * (t.ndim - 1))
