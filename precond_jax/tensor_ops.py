"""``precond.stack_ops`` bound to jax.numpy: Kronecker products applied to stacked arrays without forming them.

A stack T has shape (B, d_1, ..., d_k); matrices have shape (B, d_i, d_i).
"""

import jax
import jax.numpy as jnp
from jax import lax

from precond.stack_ops import TensorOps

_OPS = TensorOps(
    jnp,
    vector_norm=lambda x: jnp.linalg.norm(x, axis=1),
    trace=lambda a: jnp.trace(a, axis1=-2, axis2=-1),
    eye_like=lambda f: jnp.eye(f.shape[-1], dtype=f.dtype),
    cast=lambda x, dtype: x.astype(dtype),
    bitcast=lambda x, dtype: lax.bitcast_convert_type(x, dtype),
)
mode_product, apply_all, apply_all_but = _OPS.mode_product, _OPS.apply_all, _OPS.apply_all_but
unfold, gram = _OPS.unfold, _OPS.gram
block_norms, trace, normalised, round_to = _OPS.block_norms, _OPS.trace, _OPS.normalised, _OPS.round_to

_DOT_ALGORITHMS = {"tf32": lax.DotAlgorithmPreset.TF32_TF32_F32, "bfloat16": lax.DotAlgorithmPreset.BF16_BF16_F32}


def statistics_gram(t, dim: int, other, precision: str):
    """``gram`` with its inputs at ``precision``: XLA's TF32 or bf16 dot algorithm on a GPU for fp32, else emulated
    by rounding the inputs, whose products are then exact in fp32."""
    if precision == "highest":
        return gram(t, dim, other)
    if jax.default_backend() == "gpu" and t.dtype == jnp.float32:
        a, b = unfold(t, dim), unfold(t if other is None else other, dim)
        return jnp.matmul(a, jnp.swapaxes(b, -1, -2), precision=_DOT_ALGORITHMS[precision])
    return gram(round_to(t, precision), dim, None if other is None else round_to(other, precision))
