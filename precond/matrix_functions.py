"""Pure matrix functions for Kronecker preconditioners. Batched over a leading dimension: (B, d, d).

No optimizer state lives here. Every function either returns a result or raises ``MatrixFunctionError``;
callers decide whether to keep the previous result.
"""

from functools import partial

import torch

from precond import krad_updates


class MatrixFunctionError(RuntimeError):
    """A decomposition failed or produced non-finite values, in fp32 and in the fp64 retry."""


def _identity_like(a: torch.Tensor) -> torch.Tensor:
    return torch.eye(a.shape[-1], dtype=a.dtype, device=a.device).expand_as(a)


def symmetrize(a: torch.Tensor) -> torch.Tensor:
    return 0.5 * (a + a.transpose(-1, -2))


def eigh(a: torch.Tensor, retry_fp64: bool = True) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(eigenvalues ascending, eigenvectors, used_fp64) of symmetric ``a``; fp64 retry when fp32 fails.

    Results are returned in ``a``'s dtype.
    """
    try:
        vals, vecs = torch.linalg.eigh(a)
        if torch.isfinite(vals).all() and torch.isfinite(vecs).all():
            return vals, vecs, False
    except RuntimeError:  # torch.linalg.LinAlgError: no convergence
        pass
    if not retry_fp64 or a.dtype == torch.float64:
        raise MatrixFunctionError(f"eigh failed on a {tuple(a.shape)} {a.dtype} batch")
    try:
        vals, vecs = torch.linalg.eigh(a.double())
    except RuntimeError as e:
        raise MatrixFunctionError(f"eigh failed in fp32 and fp64 on a {tuple(a.shape)} batch: {e}") from None
    if not (torch.isfinite(vals).all() and torch.isfinite(vecs).all()):
        raise MatrixFunctionError(f"eigh gave non-finite values in fp32 and fp64 on a {tuple(a.shape)} batch")
    return vals.to(a.dtype), vecs.to(a.dtype), True


def inverse_root_eigh(a: torch.Tensor, root: float, eps: float) -> tuple[torch.Tensor, bool]:
    """(a + eps I)^(-1/root) by eigendecomposition; returns (result, used_fp64).

    eps is added before the decomposition; if the smallest eigenvalue is still below eps (rounding, or an
    indefinite input) the whole spectrum is shifted up so that it is eps, as the reference implementation does.
    """
    vals, vecs, used_fp64 = eigh(a + eps * _identity_like(a))
    shift = (eps - vals.min(dim=-1, keepdim=True).values).clamp(min=0)
    vals = (vals + shift).clamp(min=eps)  # the shift alone can round back below eps (eps << fp32 resolution)
    return (vecs * vals.pow(-1.0 / root).unsqueeze(-2)) @ vecs.transpose(-1, -2), used_fp64


def inverse_root_newton(
    a: torch.Tensor, root: int, eps: float, max_iterations: int = 100, tolerance: float = 1e-6
) -> torch.Tensor:
    """(a + eps I)^(-1/root) by the coupled Newton iteration (integer roots only).

    With z = (1 + root) / (2 ||A||_F): X_0 = z^(1/root) I, M_0 = z A; then T = ((root + 1) I - M) / root,
    X <- X T, M <- T^root M, until ||M - I||_max < tolerance, each block on its own (one that has converged stops,
    so a block's root does not depend on the blocks stacked with it). X converges to A^(-1/root) as M converges
    to I.
    """
    if int(root) != root or root < 1:
        raise ValueError(f"coupled Newton needs a positive integer root, got {root}")
    root = int(root)
    eye = _identity_like(a)
    a = a + eps * eye
    z = (1 + root) / (2 * torch.linalg.matrix_norm(a, keepdim=True))
    x = z.pow(1.0 / root) * eye
    m = z * a
    done = torch.zeros(a.shape[:-2] + (1, 1), dtype=torch.bool, device=a.device)
    for _ in range(max_iterations):
        t = ((root + 1) * eye - m) / root
        x = torch.where(done, x, x @ t)
        m = torch.where(done, m, torch.linalg.matrix_power(t, root) @ m)
        error = (m - eye).abs().amax(dim=(-2, -1), keepdim=True)
        if not torch.isfinite(error).all():
            raise MatrixFunctionError("coupled Newton iteration diverged (non-finite values)")
        done = error < tolerance
        if done.all():
            return symmetrize(x)
    raise MatrixFunctionError(f"coupled Newton iteration did not reach {tolerance} in {max_iterations} iterations")


def positive_root(x: torch.Tensor, root: float) -> torch.Tensor:
    """x^(1/root) of a symmetric positive semi-definite x; negative rounding noise is clamped to zero."""
    vals, vecs, _ = eigh(symmetrize(x))
    return (vecs * vals.clamp(min=0).pow(1.0 / root).unsqueeze(-2)) @ vecs.transpose(-1, -2)


def eigenbasis(a: torch.Tensor, descending: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigenvalues, eigenvectors) in descending eigenvalue order (the order QR warm starts converge to), or in
    eigh's ascending order."""
    vals, vecs, _ = eigh(a)
    return (vals.flip(-1), vecs.flip(-1)) if descending else (vals, vecs)


def basis_criterion(a: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """||B - diag B||_F / ||B||_F with B = Q^T A Q, per matrix (shape (B,)).

    It equals the relative error of approximating A by Q diag(B) Q^T, i.e. of keeping the old basis with
    refreshed eigenvalues: ||A - Q diag(B) Q^T||_F = ||B - diag B||_F for orthogonal Q.
    """
    b = q.transpose(-1, -2) @ a @ q
    off = b - torch.diag_embed(torch.diagonal(b, dim1=-2, dim2=-1))
    return torch.linalg.matrix_norm(off) / torch.linalg.matrix_norm(b).clamp(min=torch.finfo(b.dtype).tiny)


def qr_refine(
    a: torch.Tensor, q: torch.Tensor, tau: float, max_iterations: int, descending: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warm-started QR iteration: (Qk, Rk) = qr(B); B <- Rk Qk; Q <- Q Qk, each block until its criterion is
    <= tau (a block that has converged stops, as Meta's per-matrix iteration does, so a block's basis does not
    depend on the blocks stacked with it).

    Converges fastest from a ``q`` in descending eigenvalue order. Returns (Q, permutation) where columns are
    re-sorted by Rayleigh quotient (descending, or ascending) and ``permutation[..., j]`` is the old column now at
    j (to apply to the second moment when it follows the columns).
    """
    b = q.transpose(-1, -2) @ a @ q
    for _ in range(max_iterations):
        off = b - torch.diag_embed(torch.diagonal(b, dim1=-2, dim2=-1))
        done = (torch.linalg.matrix_norm(off) <= tau * torch.linalg.matrix_norm(b))[:, None, None]
        if done.all():
            break
        qk, rk = torch.linalg.qr(b)
        b = torch.where(done, b, rk @ qk)
        q = torch.where(done, q, q @ qk)
    return sort_by_rayleigh(a, q, descending)


def power_qr_step(a: torch.Tensor, q: torch.Tensor, descending: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """SOAP's refresh, in its reference order: columns sorted by descending (or ascending) Rayleigh quotient, then
    one power-iteration step Q <- qr(A Q). QR keeps the sorted column order, so the sort's permutation (returned,
    for the second moment) is the whole re-ordering; returns (Q, permutation)."""
    q, perm = sort_by_rayleigh(a, q, descending)
    q, _ = torch.linalg.qr(a @ q)
    return q, perm


def match_columns(q_new: torch.Tensor, q_old: torch.Tensor) -> torch.Tensor:
    """A one-to-one map from the new basis's columns to the old one's: ``perm[..., j]`` is the old column that
    new column j continues (a permutation of 0..d-1 per matrix).

    Columns that are each other's best match by |cosine| are paired (exact when the basis was only re-sorted,
    whatever the signs); the rest, typically from a near-degenerate subspace, are paired in index order, which
    for bases in descending eigenvalue order pairs them by eigenvalue rank.
    """
    d = q_new.shape[-1]
    overlap = (q_new.transpose(-1, -2) @ q_old).abs()
    best_old, best_new = overlap.argmax(dim=-1), overlap.argmax(dim=-2)
    index = torch.arange(d, device=q_new.device).expand_as(best_old)
    mutual = best_new.gather(-1, best_old) == index
    old_taken = torch.zeros_like(best_old).scatter_add_(-1, best_old, mutual.long()) > 0
    new_left = torch.argsort(torch.where(mutual, index + d, index), dim=-1, stable=True)  # unpaired first
    old_left = torch.argsort(torch.where(old_taken, index + d, index), dim=-1, stable=True)
    unpaired = index < (~mutual).sum(dim=-1, keepdim=True)
    return best_old.scatter(-1, new_left, torch.where(unpaired, old_left, best_old.gather(-1, new_left)))


def sort_by_rayleigh(a: torch.Tensor, q: torch.Tensor, descending: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Columns of q sorted by descending (or ascending, stable: Meta's order) Rayleigh quotient q_j^T A q_j;
    returns (Q, permutation)."""
    rayleigh = torch.einsum("...ij,...ik,...kj->...j", q, a, q)
    if descending:
        perm = torch.argsort(rayleigh, dim=-1, descending=True)
    else:
        perm = torch.argsort(rayleigh, dim=-1, stable=True)
    return torch.gather(q, -1, perm.unsqueeze(-2).expand_as(q)), perm


# KrADagrad's updates, written once (precond.krad_updates) and bound to torch.
kradagrad_star_update = partial(krad_updates.kradagrad_star_update, torch)
kradagrad_update = partial(krad_updates.kradagrad_update, torch)
