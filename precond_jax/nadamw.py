"""NAdamW's direction as an optax transformation (``precond.NAdamW``, AlgoPerf's baseline):

m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
U = (b1 m + (1 - b1) g) / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps)
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from precond_jax import grafting


class ScaleByNadamState(NamedTuple):
    count: jax.Array
    first_moment: optax.Updates
    second_moment: optax.Updates


def scale_by_nadam(betas=(0.9, 0.999), eps: float = 1e-8) -> optax.GradientTransformation:
    b1, b2 = betas

    def init_fn(params):
        zeros = [jax.tree.map(jnp.zeros_like, params) for _ in range(2)]  # separate buffers (donation)
        return ScaleByNadamState(jnp.zeros((), jnp.int32), *zeros)

    def update_fn(updates, state, params=None):
        del params
        count = grafting.increment(state.count)

        def leaf(g, m, v):
            if g is None:  # a frozen parameter: its moments wait (one step count for all, as optax counts)
                return None, m, v
            m = (1 - b1) * g + b1 * m
            estimate = (b1 * m + (1 - b1) * g) / grafting.bias_correction(b1, count, m.dtype)
            u, new = grafting.direction("adam", {"second_moment": v}, estimate, g, count, b2, eps)
            return u, m, new["second_moment"]

        out = jax.tree.map(leaf, updates, state.first_moment, state.second_moment, is_leaf=lambda x: x is None)
        parts = [jax.tree.map(lambda _, o, i=i: o[i], state.first_moment, out) for i in range(3)]
        return parts[0], ScaleByNadamState(count, parts[1], parts[2])

    return optax.GradientTransformation(init_fn, update_fn)
