"""One optax transformation for every Kronecker variant: blocking, stacking of same-shaped blocks, first moment,
grafting, refresh scheduling inside ``jit`` and failure handling (as ``precond.optimizer`` does in torch).

``scale_by_kron`` returns the direction only; ``precond_jax.<variant>`` chains it with optax's decoupled weight
decay and learning rate, so p <- p - lr (U + wd p), the torch core's update.

Failures cannot raise inside ``jit``. A failed refresh keeps the previous result and is counted (as in torch);
non-finite factors and too many failures in a row are counted in the state, and ``check`` raises the torch
core's error with its advice on the host (call it every few steps, or when the loss goes bad).
"""

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from precond import blocking, registry
from precond.config import KronConfig
from precond_jax import grafting
from precond_jax.matrix_functions import all_finite
from precond_jax.tensor_ops import block_norms
from precond_jax.variants import make_variant

# The torch engine's counters (but nonfinite_skips, kept by the skip wrapper) and the errors it raises at once, which
# cannot raise inside jit (check() raises them); one vocabulary, precond.registry's.
COUNTERS = tuple(c for c in registry.COUNTERS if c != "nonfinite_skips") + registry.TRACED_ERRORS


class ScaleByKronState(NamedTuple):
    count: jax.Array  # steps taken (int32)
    groups: tuple  # per block group: a dict of stacked arrays (``init_group`` in ``scale_by_kron``)
    counters: dict  # COUNTERS -> int32 scalars


class _Member(NamedTuple):
    leaf: int  # index among the flattened parameters
    merged_shape: tuple[int, ...]
    block: blocking.Block


class _Group(NamedTuple):
    shape: tuple[int, ...]
    preconditioned: bool
    dtype: Any
    members: tuple[_Member, ...]


def _layout(leaves: list, flags: list[bool], max_dim: int) -> list[_Group]:
    """Same-shaped blocks of all parameters, grouped as the torch core groups them (same order)."""
    groups: dict[tuple, list] = {}
    for index, (leaf, precondition) in enumerate(zip(leaves, flags, strict=True)):
        plan = blocking.plan(tuple(leaf.shape), max_dim, precondition)
        for block in plan.blocks:
            key = (block.shape, plan.preconditioned, jnp.dtype(leaf.dtype))
            groups.setdefault(key, []).append(_Member(index, plan.merged_shape, block))
    return [_Group(shape, pre, dtype, tuple(members)) for (shape, pre, dtype), members in groups.items()]


def _flags(precondition, tree) -> list[bool]:
    """Per flattened parameter: whether it may be preconditioned (False: the diagonal method only)."""
    leaves = jax.tree.leaves(tree)
    if precondition is None:
        return [True] * len(leaves)
    mask = precondition(tree) if callable(precondition) else precondition
    flags = jax.tree.leaves(mask)
    if len(flags) != len(leaves):
        raise ValueError(
            f"precondition mask has {len(flags)} leaves for {len(leaves)} parameters; give one bool per parameter "
            f"(a pytree like the parameters, or a function of them)"
        )
    return [bool(f) for f in flags]


def _is_none(x) -> bool:
    return x is None


def _gather(grads: list, likes: list, group: _Group) -> jax.Array:
    """The group's blocks stacked; a frozen parameter's (gradient None) blocks are zeros, as in the torch core."""
    blocks = []
    for m in group.members:
        g = grads[m.leaf]
        g = jnp.zeros(likes[m.leaf].shape, group.dtype) if g is None else g
        blocks.append(g.reshape(m.merged_shape)[m.block.slices])
    return jnp.stack(blocks)


def _scatter(grads: list, likes: list, groups: list[_Group], updates: list[jax.Array]) -> list:
    """Block updates back into arrays shaped like the parameters (None where the gradient was None)."""
    merged: dict[int, jax.Array] = {}
    for group, update in zip(groups, updates, strict=True):
        for member, u in zip(group.members, update, strict=True):
            if grads[member.leaf] is None:
                continue
            like = likes[member.leaf]
            target = merged.get(member.leaf, jnp.zeros(member.merged_shape, like.dtype))
            merged[member.leaf] = target.at[member.block.slices].set(u.astype(like.dtype))
    return [None if g is None else merged[i].reshape(g.shape) for i, g in enumerate(grads)]


def scale_by_kron(config: KronConfig, precondition=None) -> optax.GradientTransformation:
    """The Kronecker engine as an optax transformation (direction only; no learning rate or weight decay).

    precondition: None (every parameter may be preconditioned), a pytree of bools like the parameters, or a
    function of the parameters returning one; False routes a parameter to the diagonal method (large embedding
    tables, norms). One-dimensional parameters always take the diagonal method.
    """
    variant = make_variant(config)
    factor_dtype = jnp.dtype(config.factor_dtype)
    if factor_dtype == jnp.float64 and not jax.config.read("jax_enable_x64"):
        raise ValueError("factor_dtype='float64' needs jax_enable_x64: call jax.config.update('jax_enable_x64', True)")

    def init_group(group: _Group) -> dict:
        stack = (len(group.members),) + group.shape
        state = {"ready": jnp.zeros((), bool), "consecutive_failures": jnp.zeros((), jnp.int32)}
        # every leaf its own buffer, so that a jitted step may donate the state (update it in place)
        if not (group.preconditioned and variant.owns_first_moment):
            state["first_moment"] = jnp.zeros(stack, group.dtype)
        if not group.preconditioned or variant.grafted or not variant.ready_before_refresh:
            state["diagonal"] = grafting.init_state(config.diagonal_method, jnp.zeros(stack, group.dtype))
        if group.preconditioned:
            state["variant"] = variant.init_state(stack, factor_dtype)
        return state

    def init_fn(params):
        leaves = jax.tree.leaves(params)
        groups = _layout(leaves, _flags(precondition, params), config.max_preconditioner_dim)
        counters = {name: jnp.zeros((), jnp.int32) for name in COUNTERS}
        return ScaleByKronState(jnp.zeros((), jnp.int32), tuple(init_group(g) for g in groups), counters)

    def update_fn(updates, state, params=None):
        grads, treedef = jax.tree.flatten(updates, is_leaf=_is_none)
        if any(g is None for g in grads) and params is None:
            raise ValueError("gradients with None leaves (frozen parameters) need params: opt.update(g, state, params)")
        likes = grads if params is None else jax.tree.leaves(params)
        tree = updates if params is None else params
        groups = _layout(likes, _flags(precondition, tree), config.max_preconditioner_dim)
        count = grafting.increment(state.count)
        counters = dict(state.counters)
        new_states, directions = [], []
        # fp32 products, as the torch core's: JAX's default lets a GPU compute fp32 dots in TF32
        # (statistics_precision asks for reduced ones explicitly)
        with jax.default_matmul_precision("float32"):
            for group, gstate in zip(groups, state.groups, strict=True):
                g = _gather(grads, likes, group)
                u, gstate, counters = _step_group(config, variant, group, gstate, g, count, counters)
                new_states.append(gstate)
                directions.append(u)
        out = _scatter(grads, likes, groups, directions)
        return jax.tree.unflatten(treedef, out), ScaleByKronState(count, tuple(new_states), counters)

    return optax.GradientTransformation(init_fn, jax.jit(update_fn))  # eager use: see precond_jax/guards.py


def _refresh_due(config: KronConfig, count: jax.Array) -> jax.Array | None:
    """Whether step ``count`` refreshes (a traced bool), or None when no step ever does."""
    start = config.start
    if not math.isfinite(start) or int(start) != start:
        return None
    start = int(start)
    return (count >= start) & ((count - start) % config.precondition_frequency == 0)


def _accumulate(config, variant, vstate: dict, g, count) -> dict:
    """The factor statistics, on the steps ``config.statistics_due`` (every step: no cond, the plain trace)."""
    if config.statistics_compute_steps == 1:
        return variant.accumulate(vstate, g, count)
    return lax.cond(config.statistics_due(count), lambda s: variant.accumulate(s, g, count), lambda s: s, vstate)


def _step_group(config, variant, group: _Group, gstate: dict, g, count, counters):
    """One step of one block group: (direction, new group state, new counters)."""
    b1 = config.betas[0]
    pre = group.preconditioned
    gstate = dict(gstate)
    m_hat = None
    if not (pre and variant.owns_first_moment):
        m = (1 - b1) * g + b1 * gstate["first_moment"]
        gstate["first_moment"] = m
        m_hat = (b1 * m + (1 - b1) * g if config.nesterov else m) / grafting.bias_correction(b1, count, m.dtype)
    if pre:
        gstate["variant"] = _accumulate(config, variant, gstate["variant"], g, count)
        due = _refresh_due(config, count)
        if due is not None:  # only what a refresh reads or writes goes through the cond (fewer buffer copies)
            keys = ("variant", "ready", "consecutive_failures")
            part, counters = lax.cond(
                due,
                lambda s, c: _refresh(config, variant, s, count, c),
                lambda s, c: (s, c),
                {k: gstate[k] for k in keys},
                counters,
            )
            gstate.update(part)
    if not pre:
        u, gstate = _diagonal_direction(config, gstate, m_hat, g, count)
        return u, gstate, counters
    grafts = variant.grafted and config.grafting is not None
    if grafts:  # the grafting method's moments see every step: its norm is used after the first refresh too
        diag, gstate = _diagonal_direction(config, gstate, m_hat, g, count)

    def use_variant(gstate):
        gstate = dict(gstate)
        u, gstate["variant"] = variant.direction(gstate["variant"], g, m_hat, count)
        if grafts:
            u = u * (block_norms(diag) / (block_norms(u) + 1e-16))
        return u.astype(g.dtype), gstate

    if variant.ready_before_refresh:
        u, gstate = use_variant(gstate)
        return u, gstate, counters

    def use_diagonal(gstate):  # before the first successful refresh
        return (diag, gstate) if grafts else _diagonal_direction(config, gstate, m_hat, g, count)

    u, gstate = lax.cond(gstate["ready"], use_variant, use_diagonal, gstate)  # one branch runs, not both
    return u, gstate, counters


def _diagonal_direction(config, gstate: dict, m_hat, g, count):
    """The diagonal (grafting) method's direction, and the group state with its moments advanced."""
    u, diag_state = grafting.direction(
        config.diagonal_method, gstate["diagonal"], m_hat, g, count, config.betas[1], config.graft_eps
    )
    return u, {**gstate, "diagonal": diag_state}


def _refresh(config, variant, gstate: dict, count, counters: dict):
    """Refresh one group's preconditioner; keep the previous one on failure (counted), or on non-finite factors."""
    vstate = gstate["variant"]
    finite = all_finite(*variant.statistics(vstate))
    new, ok, increments = variant.refresh(vstate, count)
    success = finite & ok
    failed = finite & ~ok
    counters = dict(counters)
    for name, value in increments.items():
        counters[name] = counters[name] + jnp.where(success, value, 0).astype(jnp.int32)
    counters["nonfinite_factors"] = counters["nonfinite_factors"] + (~finite).astype(jnp.int32)
    counters["failures"] = counters["failures"] + failed.astype(jnp.int32)
    counters["fallbacks"] = counters["fallbacks"] + (failed & gstate["ready"]).astype(jnp.int32)
    consecutive = jnp.where(success, 0, gstate["consecutive_failures"] + failed.astype(jnp.int32))
    exhausted = failed & (consecutive == config.max_consecutive_failures)
    counters["exhausted"] = counters["exhausted"] + exhausted.astype(jnp.int32)
    gstate = dict(gstate)
    gstate["variant"] = jax.tree.map(lambda n, o: jnp.where(success, n, o), new, vstate)
    gstate["ready"] = gstate["ready"] | success
    gstate["consecutive_failures"] = consecutive
    return gstate, counters
