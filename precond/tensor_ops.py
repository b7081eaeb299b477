"""``precond.stack_ops`` bound to torch: Kronecker products applied to stacked tensors without forming them.

A stack T has shape (B, d_1, ..., d_k); matrices have shape (B, d_i, d_i).
"""

import torch

from precond.stack_ops import TensorOps

_OPS = TensorOps(
    torch,
    vector_norm=lambda x: torch.linalg.vector_norm(x, dim=1),
    trace=lambda a: torch.diagonal(a, dim1=-2, dim2=-1).sum(-1),
    eye_like=lambda f: torch.eye(f.shape[-1], dtype=f.dtype, device=f.device),
    cast=lambda x, dtype: x.to(dtype),
    bitcast=lambda x, dtype: x.view(dtype),
)
mode_product, apply_all, apply_all_but = _OPS.mode_product, _OPS.apply_all, _OPS.apply_all_but
unfold = _OPS.unfold
block_norms, trace, normalised, round_to = _OPS.block_norms, _OPS.trace, _OPS.normalised, _OPS.round_to

# A (d, m) unfolding's T T^T on CPU with d >= TRIANGLE_MIN_DIM and m >= TRIANGLE_MIN_INNER is computed as the lower
# triangle of TRIANGLE_PARTS^2 blocks (10 of 16 products), then mirrored: 0.68x the full product's time at d = m =
# 1024, 0.85-0.93x at d 512-1024 with m 256-512; no gain with smaller d or m (1.44x slower at m 10), where the
# products are too small (docs/measurements.md, "Symmetric statistics"; BLAS syrk did not pay). The JAX core and
# GPUs keep the full product.
TRIANGLE_MIN_DIM = 512
TRIANGLE_MIN_INNER = 256
TRIANGLE_PARTS = 4


def gram(t: torch.Tensor, dim: int, other: torch.Tensor | None = None) -> torch.Tensor:
    """T_(dim) T_(dim)^T (or T_(dim) O_(dim)^T): the contraction over every tensor dimension but ``dim``."""
    a = unfold(t, dim)
    if other is None and _triangle(a.device, a.shape[1], a.shape[2]):
        return _lower_blocks_gram(a, TRIANGLE_PARTS)
    return _OPS.gram(t, dim, other)


def _triangle(device: torch.device, rows: int, inner: int) -> bool:
    """Whether a (rows, inner) unfolding's self-Gram pays as a lower block triangle (CPU, large enough products)."""
    return device.type == "cpu" and rows >= TRIANGLE_MIN_DIM and inner >= TRIANGLE_MIN_INNER


def _lower_blocks_gram(a: torch.Tensor, parts: int) -> torch.Tensor:
    """A A^T from the products of its lower block triangle, each strictly lower block mirrored above."""
    d = a.shape[1]
    cuts = [d * i // parts for i in range(parts + 1)]
    rows = [slice(cuts[i], cuts[i + 1]) for i in range(parts)]
    out = a.new_empty(a.shape[0], d, d)
    for i, ri in enumerate(rows):
        for rj in rows[: i + 1]:
            torch.bmm(a[:, ri], a[:, rj].transpose(-1, -2), out=out[:, ri, rj])
            if rj != ri:
                out[:, rj, ri] = out[:, ri, rj].transpose(-1, -2)
    return out


def statistics_gram(t: torch.Tensor, dim: int, other: torch.Tensor | None, precision: str) -> torch.Tensor:
    """``gram`` with its inputs at ``precision``: on the tensor cores of a CUDA device for fp32, else emulated by
    rounding the inputs, whose products are then exact in fp32."""
    if precision == "highest":
        return gram(t, dim, other)
    if t.device.type == "cuda" and t.dtype == torch.float32:
        return _tensor_core_gram(unfold(t, dim), unfold(t if other is None else other, dim), precision)
    return gram(round_to(t, precision), dim, None if other is None else round_to(other, precision))


def _tensor_core_gram(a: torch.Tensor, b: torch.Tensor, precision: str) -> torch.Tensor:
    if precision == "bfloat16":
        return torch.bmm(a.bfloat16(), b.bfloat16().transpose(-1, -2), out_dtype=torch.float32)
    # torch's TF32 switch is global (not thread-safe, and it refuses to mix with the legacy allow_tf32 a program
    # may have set): flipped for this product only, and emulated where torch refuses
    matmul = torch.backends.cuda.matmul
    try:
        before, matmul.fp32_precision = matmul.fp32_precision, "tf32"
    except RuntimeError:
        return round_to(a, "tf32") @ round_to(b, "tf32").transpose(-1, -2)
    try:
        return torch.bmm(a, b.transpose(-1, -2))
    finally:
        matmul.fp32_precision = before


def folds_ema(t: torch.Tensor, dim: int, beta2: float, precision: str) -> bool:
    """Whether ``ema_gram`` can fold the statistics' EMA into their product: one GEMM on inputs as they are (or
    rounded where the tensor cores do not compute them), not the triangle path, and beta2 > 0 (baddbmm's beta 0
    would drop a NaN in the statistics where the EMA keeps it)."""
    rows = t.shape[dim + 1]
    triangle = _triangle(t.device, rows, t[0].numel() // rows)
    tensor_cores = precision != "highest" and t.device.type == "cuda" and t.dtype == torch.float32
    return beta2 > 0 and not triangle and not tensor_cores


def ema_gram(stat: torch.Tensor, t: torch.Tensor, dim: int, beta2: float, precision: str) -> None:
    """stat <- beta2 stat + (1 - beta2) T_(dim) T_(dim)^T in place (beta2 = 1: a plain sum), the product's inputs at
    ``precision``, in one baddbmm (where ``folds_ema``): the separate passes over stat dominate small products,
    0.5-0.6x the time at m <= 128 (docs/measurements.md, "Symmetric statistics")."""
    a = round_to(unfold(t, dim), precision)
    # out=stat rather than baddbmm_: the same kernel, and torch's FLOP counter sees it (precond.flops is tested on it)
    torch.baddbmm(stat, a, a.transpose(-1, -2), beta=beta2, alpha=1.0 if beta2 == 1.0 else 1.0 - beta2, out=stat)
