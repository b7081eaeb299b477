"""KrADagrad's and KrADagrad*'s inverse-factor updates (Mei, Moreno, Walters 2023), written once for any array
namespace that spells ``swapaxes``, ``square`` and ``sqrt`` alike (torch, jax.numpy); each core's
``matrix_functions`` binds them to its own. Imports no framework.

X is a stack of inverse factors (B, d, d) and ``u`` the (B, d, r) statistics root, A = u u^T.
"""


def kradagrad_star_update(xp, x, u, normalizer):
    """KrADagrad*: X - X A X / (d (1 + tr(A X))) with d = ``normalizer`` (the factor size).

    Keeps X positive definite, (X^-1 + A)^-1 <= result <= X in Loewner order, and for rank-1 A with d = 1 it is
    the Sherman-Morrison inverse update. With r < 2d the factored form X A X = (X u)(X u)^T costs O(d^2 r)
    instead of O(d^3).
    """
    xu = x @ u
    trace = (u * xu).sum(axis=(-2, -1))[..., None, None]  # tr(A X) = tr(u^T X u)
    return _symmetrize(xp, x - _outer(xp, xu, x, u) / (normalizer * (1 + trace)))


def kradagrad_update(xp, x, u, damping: float):
    """KrADagrad: damping X <- X - damping X^2, then X <- X - X A X / (1 + ||X A||_F)."""
    if damping:
        x = x - damping * (x @ x)
    xu = x @ u
    d, r = u.shape[-2], u.shape[-1]
    if r <= d:  # ||X u u^T||_F^2 = tr((Xu)^T (Xu) u^T u): r x r products
        norm_sq = ((xp.swapaxes(xu, -1, -2) @ xu) * (xp.swapaxes(u, -1, -2) @ u)).sum(axis=(-2, -1))
    else:  # d x d: a 3x3 conv kernel's factor sees r = c_out * c_in columns, and r x r would not fit in memory
        norm_sq = xp.square(xu @ xp.swapaxes(u, -1, -2)).sum(axis=(-2, -1))
    return _symmetrize(xp, x - _outer(xp, xu, x, u) / (1 + xp.sqrt(norm_sq.clip(min=0))[..., None, None]))


def _outer(xp, xu, x, u):
    """X A X: (Xu)(Xu)^T when the rank r is below 2d, else X (u u^T) X."""
    d, r = u.shape[-2], u.shape[-1]
    if r < 2 * d:
        return xu @ xp.swapaxes(xu, -1, -2)
    return x @ (u @ xp.swapaxes(u, -1, -2)) @ x


def _symmetrize(xp, a):
    return 0.5 * (a + xp.swapaxes(a, -1, -2))
