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


def gram(t: torch.Tensor, dim: int, other: torch.Tensor | None = None) -> torch.Tensor:
    """T_(dim) T_(dim)^T (or T_(dim) O_(dim)^T): the contraction over every tensor dimension but ``dim``."""
    a = unfold(t, dim)
    b = a if other is None else unfold(other, dim)
    return a @ b.transpose(-1, -2)


def block_norms(t: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of each block, shaped to broadcast against the stack: (B, 1, ..., 1)."""
    return torch.linalg.vector_norm(t.reshape(t.shape[0], -1), dim=1).reshape((-1,) + (1,) * (t.dim() - 1))
