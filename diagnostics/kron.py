"""How well Kronecker products approximate a layer's curvature (Morwani et al. 2024), as pure functions.

A weight gradient G (m x n) is flattened row-major, g = vec(G), so that vec(A G B) = (A kron B^T) vec(G) and
E[g g^T] is approximated by A kron B with A (m x m) and B (n x n). Given per-example gradients (N, m, n):
- H = E[g g^T], exact (mn x mn; small layers only);
- Shampoo^2's L kron R with L = E[G G^T], R = E[G^T G];
- Shampoo's L^(1/2) kron R^(1/2);
- the optimal A kron B (nearest in Frobenius norm up to scale), by the power iteration
  A <- E[G B G^T] / ||.||, B <- E[G^T A G] / ||.|| (both from the previous pair), whose first step from
  (I, I) is (L, R) up to scale.
"""

import torch

from precond.matrix_functions import positive_root


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """<A, B>_F / (||A||_F ||B||_F)."""
    return float((a * b).sum() / (torch.linalg.norm(a) * torch.linalg.norm(b)))


def gradient_covariance(grads: torch.Tensor) -> torch.Tensor:
    """H = E[vec(G) vec(G)^T] over the leading axis of (N, m, n) per-example gradients."""
    flat = grads.reshape(grads.shape[0], -1)
    return flat.T @ flat / grads.shape[0]


def shampoo_factors(grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, R) = (E[G G^T], E[G^T G])."""
    n = grads.shape[0]
    return torch.einsum("bij,bkj->ik", grads, grads) / n, torch.einsum("bji,bjk->ik", grads, grads) / n


def power_step(grads: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One simultaneous step (A, B) <- (E[G B G^T], E[G^T A G]), each normalised to unit Frobenius norm."""
    n = grads.shape[0]
    new_a = torch.einsum("bij,jk,blk->il", grads, b, grads) / n
    new_b = torch.einsum("bji,jk,bkl->il", grads, a, grads) / n
    return new_a / torch.linalg.norm(new_a), new_b / torch.linalg.norm(new_b)


def optimal_kron(grads: torch.Tensor, iterations: int = 100, tolerance: float = 1e-10):
    """The best Kronecker approximation's factors (A, B), from the identity, to convergence."""
    m, n = grads.shape[1:]
    a = torch.eye(m, dtype=grads.dtype) / m**0.5
    b = torch.eye(n, dtype=grads.dtype) / n**0.5
    for _ in range(iterations):
        new_a, new_b = power_step(grads, a, b)
        done = torch.linalg.norm(new_a - a) + torch.linalg.norm(new_b - b) < tolerance
        a, b = new_a, new_b
        if done:
            break
    return a, b


def approximation_cosines(grads: torch.Tensor, factor_grads: torch.Tensor | None = None) -> dict[str, float]:
    """Cosine to the exact H of ``grads`` for opt_kron, shampoo2 (L kron R) and shampoo (L^1/2 kron R^1/2).

    ``factor_grads`` (default ``grads``) are what the factors are estimated from, e.g. batch-mean gradients.
    Computed in fp64: the statistics of small gradients are far below fp32's resolution of their sums.
    """
    grads = grads.double()
    factor_grads = grads if factor_grads is None else factor_grads.double()
    h = gradient_covariance(grads)
    left, right = shampoo_factors(factor_grads)
    a, b = optimal_kron(factor_grads)
    return {
        "opt_kron": cosine(h, torch.kron(a, b)),
        "shampoo2": cosine(h, torch.kron(left, right)),
        "shampoo": cosine(h, torch.kron(positive_root(left, 2), positive_root(right, 2))),
    }
