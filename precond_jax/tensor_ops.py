"""``precond.stack_ops`` bound to jax.numpy: Kronecker products applied to stacked arrays without forming them.

A stack T has shape (B, d_1, ..., d_k); matrices have shape (B, d_i, d_i).
"""

import jax.numpy as jnp

from precond.stack_ops import TensorOps

_OPS = TensorOps(
    jnp,
    vector_norm=lambda x: jnp.linalg.norm(x, axis=1),
    trace=lambda a: jnp.trace(a, axis1=-2, axis2=-1),
    eye_like=lambda f: jnp.eye(f.shape[-1], dtype=f.dtype),
)
mode_product, apply_all, apply_all_but = _OPS.mode_product, _OPS.apply_all, _OPS.apply_all_but
unfold, gram = _OPS.unfold, _OPS.gram
block_norms, trace, normalised = _OPS.block_norms, _OPS.trace, _OPS.normalised
