"""Kronecker products applied to stacked arrays without forming them: mode products and factor statistics.

A stack T has shape (B, d_1, ..., d_k); matrices have shape (B, d_i, d_i). Written once for any array namespace
that spells ``moveaxis``, ``swapaxes``, ``where`` and ``finfo`` alike (torch, jax.numpy): each core binds
``TensorOps`` to its own (``precond.tensor_ops``, ``precond_jax.tensor_ops``), passing what the frameworks spell
apart (the norm, the trace, the identity on a device, a dtype cast and a bit cast). Imports no framework.
"""

# fp32 bits: half of TF32's last mantissa unit (added, it rounds to nearest with ties away), and the 19 bits TF32 keeps
TF32_HALF_UNIT, TF32_KEPT = 0x1000, -0x2000


class TensorOps:
    def __init__(self, xp, vector_norm, trace, eye_like, cast, bitcast):
        """xp: the array namespace; vector_norm(x): the 2-norm of each row of (B, n); trace(a): each (B, d, d)
        matrix's trace; eye_like(f): the identity of f's last two dims, in f's dtype and on f's device;
        cast(x, dtype): x's values in ``dtype``; bitcast(x, dtype): x's bits read as the same-width ``dtype``."""
        self.xp, self._vector_norm, self.trace, self._eye_like = xp, vector_norm, trace, eye_like
        self._cast, self._bitcast = cast, bitcast

    def round_to(self, t, precision: str):
        """``t`` rounded to a statistics precision's input format (``KronConfig.statistics_precision``), in its
        dtype: "tf32" to 10 mantissa bits, to nearest with ties away (PTX's cvt.rna.tf32.f32); "bfloat16" to 7,
        ties to even; "highest" unchanged."""
        if precision == "highest":
            return t
        f32 = self.xp.float32
        x = self._cast(t, f32)
        if precision == "bfloat16":
            x = self._cast(self._cast(x, self.xp.bfloat16), f32)
        else:
            rounded = self._bitcast((self._bitcast(x, self.xp.int32) + TF32_HALF_UNIT) & TF32_KEPT, f32)
            # a NaN's payload can carry into the exponent (inf) or overflow the sign (0): kept as it is
            x = self.xp.where(self.xp.isnan(x), x, rounded)
        return self._cast(x, t.dtype)

    def mode_product(self, t, m, dim: int):
        """T x_dim M: out[b, .., j, ..] = sum_l M[b, j, l] T[b, .., l, ..] along tensor dimension ``dim`` (0-based)."""
        moved = self.xp.moveaxis(t, dim + 1, -1)
        shape = moved.shape
        out = moved.reshape(shape[0], -1, shape[-1]) @ self.xp.swapaxes(m, -1, -2)
        return self.xp.moveaxis(out.reshape(shape), -1, dim + 1)

    def apply_all(self, t, mats, transpose: bool = False):
        """T x_1 M_1 x_2 M_2 ... (with M_i^T when ``transpose``)."""
        for dim, m in enumerate(mats):
            t = self.mode_product(t, self.xp.swapaxes(m, -1, -2) if transpose else m, dim)
        return t

    def apply_all_but(self, t, mats, skip: int):
        """T x_j M_j for every j but ``skip``, in order."""
        for dim, m in enumerate(mats):
            if dim != skip:
                t = self.mode_product(t, m, dim)
        return t

    def unfold(self, t, dim: int):
        """The mode-``dim`` unfolding T_(dim): shape (B, d_dim, product of the other dims)."""
        return self.xp.moveaxis(t, dim + 1, 1).reshape(t.shape[0], t.shape[dim + 1], -1)

    def gram(self, t, dim: int, other=None):
        """T_(dim) T_(dim)^T (or T_(dim) O_(dim)^T): the contraction over every tensor dimension but ``dim``."""
        a = self.unfold(t, dim)
        b = a if other is None else self.unfold(other, dim)
        return a @ self.xp.swapaxes(b, -1, -2)

    def block_norms(self, t):
        """Frobenius norm of each block, shaped to broadcast against the stack: (B, 1, ..., 1)."""
        return self._vector_norm(t.reshape(t.shape[0], -1)).reshape((-1,) + (1,) * (t.ndim - 1))

    def normalised(self, f):
        """The factor scaled to mean eigenvalue 1 (the identity while the factor is still zero)."""
        tr = self.trace(f)[:, None, None]
        tiny = self.xp.finfo(f.dtype).tiny
        return self.xp.where(tr > 0, f * (f.shape[-1] / tr.clip(min=tiny)), self._eye_like(f))
