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
)
mode_product, apply_all, apply_all_but = _OPS.mode_product, _OPS.apply_all, _OPS.apply_all_but
unfold, gram = _OPS.unfold, _OPS.gram
block_norms, trace, normalised = _OPS.block_norms, _OPS.trace, _OPS.normalised

# fp32 bits: half of TF32's last mantissa unit (added, it rounds to nearest with ties away), and the 19 bits TF32 keeps
TF32_HALF_UNIT, TF32_KEPT = 0x1000, -0x2000
_DOT_ALGORITHMS = {"tf32": lax.DotAlgorithmPreset.TF32_TF32_F32, "bfloat16": lax.DotAlgorithmPreset.BF16_BF16_F32}


def round_to(t, precision: str):
    """``t`` rounded to a statistics precision's input format (``KronConfig.statistics_precision``), in its dtype."""
    if precision == "highest":
        return t
    x = t.astype(jnp.float32)
    if precision == "bfloat16":
        x = x.astype(jnp.bfloat16).astype(jnp.float32)
    else:
        bits = lax.bitcast_convert_type(x, jnp.int32)
        x = lax.bitcast_convert_type((bits + TF32_HALF_UNIT) & TF32_KEPT, jnp.float32)
    return x.astype(t.dtype)


def statistics_gram(t, dim: int, other, precision: str):
    """``gram`` with its inputs at ``precision``: XLA's TF32 or bf16 dot algorithm on a GPU for fp32, else emulated
    by rounding the inputs, whose products are then exact in fp32."""
    if precision == "highest":
        return gram(t, dim, other)
    if jax.default_backend() == "gpu" and t.dtype == jnp.float32:
        a, b = unfold(t, dim), unfold(t if other is None else other, dim)
        return jnp.matmul(a, jnp.swapaxes(b, -1, -2), precision=_DOT_ALGORITHMS[precision])
    return gram(round_to(t, precision), dim, None if other is None else round_to(other, precision))
