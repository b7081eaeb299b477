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
)
mode_product, apply_all, apply_all_but = _OPS.mode_product, _OPS.apply_all, _OPS.apply_all_but
unfold, gram = _OPS.unfold, _OPS.gram
block_norms, trace, normalised = _OPS.block_norms, _OPS.trace, _OPS.normalised
