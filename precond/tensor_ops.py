"""Kronecker products applied to stacked tensors without forming them: mode products and factor statistics.

A stack T has shape (B, d_1, ..., d_k); matrices have shape (B, d_i, d_i).
"""

import torch


def mode_product(t: torch.Tensor, m: torch.Tensor, dim: int) -> torch.Tensor:
    """T x_dim M: out[b, .., j, ..] = sum_l M[b, j, l] T[b, .., l, ..] along tensor dimension ``dim`` (0-based)."""
    moved = t.movedim(dim + 1, -1)
    shape = moved.shape
    out = moved.reshape(shape[0], -1, shape[-1]) @ m.transpose(-1, -2)
    return out.reshape(shape).movedim(-1, dim + 1)


def apply_all(t: torch.Tensor, mats: list[torch.Tensor], transpose: bool = False) -> torch.Tensor:
    """T x_1 M_1 x_2 M_2 ... (with M_i^T when ``transpose``)."""
    for dim, m in enumerate(mats):
        t = mode_product(t, m.transpose(-1, -2) if transpose else m, dim)
    return t


def unfold(t: torch.Tensor, dim: int) -> torch.Tensor:
    """The mode-``dim`` unfolding T_(dim): shape (B, d_dim, product of the other dims)."""
    return t.movedim(dim + 1, 1).reshape(t.shape[0], t.shape[dim + 1], -1)


# A (d, m) unfolding's T T^T on CPU with d >= TRIANGLE_MIN_DIM and m >= TRIANGLE_MIN_INNER is computed as the lower
# triangle of TRIANGLE_PARTS^2 blocks (10 of 16 products), then mirrored: 0.68x the full product's time at d = m =
# 1024, 0.85-0.93x at d 512-1024 with m 256-512; no gain with smaller d or m (1.44x slower at m 10), where the
# products are too small (docs/measurements.md, "Symmetric statistics"; BLAS syrk did not pay).
TRIANGLE_MIN_DIM = 512
TRIANGLE_MIN_INNER = 256
TRIANGLE_PARTS = 4


def gram(t: torch.Tensor, dim: int, other: torch.Tensor | None = None) -> torch.Tensor:
    """T_(dim) T_(dim)^T (or T_(dim) O_(dim)^T): the contraction over every tensor dimension but ``dim``."""
    a = unfold(t, dim)
    if other is None and a.device.type == "cpu" and a.shape[1] >= TRIANGLE_MIN_DIM and a.shape[2] >= TRIANGLE_MIN_INNER:
        return _lower_blocks_gram(a, TRIANGLE_PARTS)
    b = a if other is None else unfold(other, dim)
    return a @ b.transpose(-1, -2)


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


def block_norms(t: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of each block, shaped to broadcast against the stack: (B, 1, ..., 1)."""
    return torch.linalg.vector_norm(t.reshape(t.shape[0], -1), dim=1).reshape((-1,) + (1,) * (t.dim() - 1))
