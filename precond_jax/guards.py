"""What the torch core does around every step, as optax wrappers: the non-finite gradient check (one reduction
per parameter, one ``lax.cond``), and frozen parameters (gradient None) that do not move.

Inside ``jit`` nothing can raise: under ``nonfinite="raise"`` as under ``"skip"`` a step with a NaN or infinite
gradient changes nothing (parameters and state stay as they were) and is recorded; ``precond_jax.check`` then
raises the torch core's error, naming the parameter and the step, for "raise".
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from precond.guards import check_nonfinite_policy


class NonfiniteState(NamedTuple):
    inner: Any
    steps: jax.Array  # steps taken (not skipped)
    skips: jax.Array  # steps skipped for a non-finite gradient
    first_step: jax.Array  # the step (1-based) of the first non-finite gradient; 0: none yet
    first_leaf: jax.Array  # its parameter's index among the flattened parameters; -1: none yet
    raises: jax.Array  # True under nonfinite="raise": ``precond_jax.check`` raises once a step was skipped


def skip_nonfinite(inner: optax.GradientTransformation, policy: str) -> optax.GradientTransformation:
    check_nonfinite_policy("precond_jax", policy)

    def init_fn(params):
        check_params(params)
        zeros = [jnp.zeros((), jnp.int32) for _ in range(3)]  # separate buffers: the state may be donated
        first_leaf = jnp.full((), -1, jnp.int32)
        return NonfiniteState(inner.init(params), *zeros, first_leaf, jnp.asarray(policy == "raise"))

    def update_fn(updates, state, params=None):
        grads = jax.tree.leaves(updates, is_leaf=lambda x: x is None)
        finite = jnp.stack([jnp.ones((), bool) if g is None else jnp.all(jnp.isfinite(g)) for g in grads])
        ok = jnp.all(finite)

        def skip(_):
            zeros = jax.tree.map(jnp.zeros_like, updates if params is None else params)
            return zeros, state.inner

        def take(_):
            return inner.update(updates, state.inner, params)

        new_updates, new_inner = lax.cond(ok, take, skip, None)
        first = (state.first_step == 0) & ~ok
        return new_updates, NonfiniteState(
            new_inner,
            state.steps + ok.astype(jnp.int32),
            state.skips + (~ok).astype(jnp.int32),
            jnp.where(first, state.steps + 1, state.first_step),
            jnp.where(first, jnp.argmin(finite).astype(jnp.int32), state.first_leaf),
            state.raises,
        )

    # jitted: called eagerly, the cond would trace its fresh branch closures again and compile the whole step anew
    # every step (a growing cache of executables); jitted, it compiles once per signature, and inside an outer
    # jit it is inlined
    return optax.GradientTransformation(init_fn, jax.jit(update_fn))


def check_params(params) -> None:
    """Real floating-point arrays only (as the torch core: integer or complex parameters cannot be optimized)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise ValueError(
                f"precond_jax: parameter {jax.tree_util.keystr(path)} has dtype {leaf.dtype}; only real "
                f"floating-point parameters can be optimized (convert it, or leave it out of the parameters)"
            )


def frozen_stay() -> optax.GradientTransformation:
    """None updates (gradient None: a frozen parameter) become zeros, so ``optax.apply_updates`` leaves those
    parameters exactly as they are (no weight decay either), as torch.optim does."""

    def update_fn(updates, state, params=None):
        if params is None:
            return updates, state
        return jax.tree.map(
            lambda u, p: jnp.zeros_like(p) if u is None else u, updates, params, is_leaf=lambda x: x is None
        ), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)
