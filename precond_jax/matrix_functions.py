"""Pure matrix functions for Kronecker preconditioners in JAX, batched over a leading dimension: (B, d, d).

The same formulas as ``precond.matrix_functions``. Nothing raises inside ``jit``: instead of raising, every
function that can fail returns an ``ok`` flag (per call, all blocks together, as the torch core fails a whole
batched call), and the engine keeps the previous result when it is False.
"""

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from precond import krad_updates


def _identity_like(a: jax.Array) -> jax.Array:
    return jnp.broadcast_to(jnp.eye(a.shape[-1], dtype=a.dtype), a.shape)


def _t(a: jax.Array) -> jax.Array:
    return jnp.swapaxes(a, -1, -2)


def symmetrize(a: jax.Array) -> jax.Array:
    return 0.5 * (a + _t(a))


def all_finite(*arrays: jax.Array) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in arrays]))


def _one_matrix_at_a_time_on_cpu(fn):
    """``fn`` (a LAPACK-backed decomposition) of a (..., d, d) stack, called one matrix at a time on CPU.

    jaxlib 0.10's CPU kernels split a batch over XLA's intra-op thread pool and park the calling pool thread
    until the parts are done. When XLA runs as many independent decompositions at once as the pool has threads
    (the block groups' refreshes of one step), every thread waits for parts no thread is free to run and the
    step never returns (Shampoo on fashion_vit, 2 threads). A batch of one runs on the calling thread, so
    mapping over the stack cannot deadlock; other platforms keep the batched call."""

    def call(a: jax.Array):
        if a.ndim == 2:
            return fn(a)

        # fresh functions on every call: lax.map and platform_dependent cache their traces by function identity,
        # and a cached trace would keep a decomposition that was since replaced (tests force failures that way)
        def mapped(a):
            out = lax.map(lambda m: fn(m), a.reshape((-1,) + a.shape[-2:]))
            return jax.tree.map(lambda x: x.reshape(a.shape[:-2] + x.shape[1:]), out)

        return lax.platform_dependent(a, cpu=mapped, default=lambda a: fn(a))

    return call


_eigh = _one_matrix_at_a_time_on_cpu(lambda a: tuple(jnp.linalg.eigh(a, symmetrize_input=False)))
_qr = _one_matrix_at_a_time_on_cpu(lambda a: tuple(jnp.linalg.qr(a)))


def fp64_available() -> bool:
    return bool(jax.config.read("jax_enable_x64"))


def eigh(a: jax.Array, retry_fp64: bool = True) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(eigenvalues ascending, eigenvectors, ok, used_fp64) of symmetric ``a``.

    A failed LAPACK call gives non-finite values in JAX (it does not raise); then, for a float32 input and with
    ``jax_enable_x64`` on, the decomposition is retried in float64 (only evaluated when needed: ``lax.cond``).
    Results are in ``a``'s dtype.
    """
    vals, vecs = _eigh(a)
    ok = all_finite(vals, vecs)
    if not retry_fp64 or a.dtype == jnp.float64 or not fp64_available():
        return vals, vecs, ok, jnp.zeros((), bool)

    def retry(_):
        v64, q64 = _eigh(a.astype(jnp.float64))
        return v64.astype(a.dtype), q64.astype(a.dtype), all_finite(v64, q64)

    vals, vecs, ok64 = lax.cond(ok, lambda _: (vals, vecs, ok), retry, None)
    return vals, vecs, ok64, ~ok


def inverse_root_eigh(a: jax.Array, root: float, eps: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(a + eps I)^(-1/root) by eigendecomposition; returns (result, ok, used_fp64).

    eps is added before the decomposition; if the smallest eigenvalue is still below eps (rounding, or an
    indefinite input) the whole spectrum is shifted up so that it is eps, as the reference implementation does.
    """
    vals, vecs, ok, used_fp64 = eigh(a + eps * _identity_like(a))
    shift = jnp.maximum(eps - jnp.min(vals, axis=-1, keepdims=True), 0)
    vals = jnp.maximum(vals + shift, eps)  # the shift alone can round back below eps (eps << fp32 resolution)
    return (vecs * (vals ** (-1.0 / root))[..., None, :]) @ _t(vecs), ok, used_fp64


def inverse_root_newton(
    a: jax.Array, root: int, eps: float, max_iterations: int = 100, tolerance: float = 1e-6
) -> tuple[jax.Array, jax.Array]:
    """(a + eps I)^(-1/root) by the coupled Newton iteration (integer roots only); returns (result, ok).

    With z = (1 + root) / (2 ||A||_F): X_0 = z^(1/root) I, M_0 = z A; then T = ((root + 1) I - M) / root,
    X <- X T, M <- T^root M, until ||M - I||_max < tolerance, each block on its own after a first step (as the torch
    core). ok is False when it diverged or did not converge.
    """
    if int(root) != root or root < 1:
        raise ValueError(f"coupled Newton needs a positive integer root, got {root}")
    root = int(root)
    eye = _identity_like(a)
    a = a + eps * eye
    z = (1 + root) / (2 * jnp.linalg.norm(a, axis=(-2, -1), keepdims=True))
    x0 = z ** (1.0 / root) * eye

    def error(m):  # per block
        return jnp.max(jnp.abs(m - eye), axis=(-2, -1), keepdims=True)

    def cond(carry):
        i, _, _, err = carry
        return (i < max_iterations) & jnp.all(jnp.isfinite(err)) & jnp.any(err >= tolerance)

    def body(carry):
        i, x, m, err = carry
        done = err < tolerance
        t = ((root + 1) * eye - m) / root
        x = jnp.where(done, x, x @ t)
        m = jnp.where(done, m, jnp.linalg.matrix_power(t, root) @ m)
        return i + 1, x, m, error(m)

    m0 = z * a
    init = (0, x0, m0, jnp.full(error(m0).shape, 2 * tolerance, m0.dtype))  # every block takes a first step
    _, x, _, err = lax.while_loop(cond, body, init)
    return symmetrize(x), jnp.all(jnp.isfinite(err)) & jnp.all(err < tolerance)


def positive_root(x: jax.Array, root: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """x^(1/root) of a symmetric positive semi-definite x (negative rounding noise clamped to zero);
    returns (result, ok, used_fp64)."""
    vals, vecs, ok, used_fp64 = eigh(symmetrize(x))
    return (vecs * (jnp.maximum(vals, 0) ** (1.0 / root))[..., None, :]) @ _t(vecs), ok, used_fp64


def eigenbasis(a: jax.Array, descending: bool = True) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(eigenvalues, eigenvectors, ok) in descending eigenvalue order (the order QR warm starts converge to), or
    in eigh's ascending order."""
    vals, vecs, ok, _ = eigh(a)
    return (jnp.flip(vals, -1), jnp.flip(vecs, -1), ok) if descending else (vals, vecs, ok)


def _off_diagonal(b: jax.Array) -> jax.Array:
    return b - jnp.diagonal(b, axis1=-2, axis2=-1)[..., None] * jnp.eye(b.shape[-1], dtype=b.dtype)


def basis_criterion(a: jax.Array, q: jax.Array) -> jax.Array:
    """||B - diag B||_F / ||B||_F with B = Q^T A Q, per matrix (shape (B,)): the relative error of keeping the
    old basis with refreshed eigenvalues."""
    b = _t(q) @ a @ q
    tiny = jnp.finfo(b.dtype).tiny
    return jnp.linalg.norm(_off_diagonal(b), axis=(-2, -1)) / jnp.maximum(jnp.linalg.norm(b, axis=(-2, -1)), tiny)


def qr_refine(
    a: jax.Array,
    q: jax.Array,
    tau: float,
    max_iterations: int,
    active: jax.Array | None = None,
    descending: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Warm-started QR iteration: (Qk, Rk) = qr(B); B <- Rk Qk; Q <- Q Qk, each ``active`` block until its
    criterion is <= tau (a converged or inactive block stops, as in the torch core, so a block's basis does not
    depend on the blocks stacked with it). Converges fastest from a ``q`` in descending eigenvalue order. Returns
    (Q re-sorted by descending, or ascending, Rayleigh quotient, permutation)."""

    def done(b):
        off = jnp.linalg.norm(_off_diagonal(b), axis=(-2, -1))
        finished = off <= tau * jnp.linalg.norm(b, axis=(-2, -1))
        return (finished if active is None else finished | ~active)[:, None, None]

    def cond(carry):
        i, b, _ = carry
        return (i < max_iterations) & ~jnp.all(done(b))

    def body(carry):
        i, b, q = carry
        stop = done(b)
        qk, rk = _qr(b)
        return i + 1, jnp.where(stop, b, rk @ qk), jnp.where(stop, q, q @ qk)

    _, _, q = lax.while_loop(cond, body, (0, _t(q) @ a @ q, q))
    return sort_by_rayleigh(a, q, descending)


def power_qr_step(a: jax.Array, q: jax.Array, descending: bool = True) -> tuple[jax.Array, jax.Array]:
    """SOAP's refresh, in its reference order: columns sorted by descending (or ascending) Rayleigh quotient,
    then one power-iteration step Q <- qr(A Q). QR keeps the sorted column order, so the sort's permutation
    (returned, for the second moment) is the whole re-ordering; returns (Q, permutation)."""
    q, perm = sort_by_rayleigh(a, q, descending)
    q, _ = _qr(a @ q)
    return q, perm


def match_columns(q_new: jax.Array, q_old: jax.Array) -> jax.Array:
    """A one-to-one map from the new basis's columns to the old one's: ``perm[..., j]`` is the old column that
    new column j continues (a permutation of 0..d-1 per matrix), as ``precond.matrix_functions.match_columns``.

    Columns that are each other's best match by |cosine| are paired; the rest are paired in index order.
    """
    d = q_new.shape[-1]
    overlap = jnp.abs(_t(q_new) @ q_old)
    best_old, best_new = jnp.argmax(overlap, axis=-1), jnp.argmax(overlap, axis=-2)
    index = jnp.broadcast_to(jnp.arange(d), best_old.shape)
    rows = jnp.arange(best_old.shape[0])[:, None]
    mutual = jnp.take_along_axis(best_new, best_old, axis=-1) == index
    old_taken = jnp.zeros(best_old.shape, jnp.int32).at[rows, best_old].add(mutual.astype(jnp.int32)) > 0
    new_left = jnp.argsort(jnp.where(mutual, index + d, index), axis=-1, stable=True)  # unpaired first
    old_left = jnp.argsort(jnp.where(old_taken, index + d, index), axis=-1, stable=True)
    unpaired = index < jnp.sum(~mutual, axis=-1, keepdims=True)
    values = jnp.where(unpaired, old_left, jnp.take_along_axis(best_old, new_left, axis=-1))
    return best_old.at[rows, new_left].set(values)


def sort_by_rayleigh(a: jax.Array, q: jax.Array, descending: bool = True) -> tuple[jax.Array, jax.Array]:
    """Columns of q sorted by descending (or ascending) Rayleigh quotient q_j^T A q_j, stable; returns
    (Q, permutation)."""
    rayleigh = jnp.einsum("...ij,...ik,...kj->...j", q, a, q)
    perm = jnp.argsort(-rayleigh if descending else rayleigh, axis=-1, stable=True)
    return jnp.take_along_axis(q, perm[..., None, :], axis=-1), perm


# KrADagrad's updates, written once (precond.krad_updates) and bound to jnp.
kradagrad_star_update = partial(krad_updates.kradagrad_star_update, jnp)
kradagrad_update = partial(krad_updates.kradagrad_update, jnp)
