"""Matrix functions against closed forms, forced failures, and KrAD's algebraic properties."""

import pytest
import torch

from precond import matrix_functions as mf


def random_spd(d, low, high, seed=0, dtype=torch.float64):
    """Q diag(eigs) Q^T with eigenvalues log-spaced over [low, high]; returns (A, Q, eigs)."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    eigs = torch.logspace(torch.log10(torch.tensor(low)), torch.log10(torch.tensor(high)), d, dtype=torch.float64)
    return ((q * eigs) @ q.T).to(dtype), q.to(dtype), eigs.to(dtype)


def relative_error(p, exact):
    return (torch.linalg.matrix_norm(p.double() - exact) / torch.linalg.matrix_norm(exact)).item()


def is_psd(a, tol=1e-10):
    return torch.linalg.eigvalsh(mf.symmetrize(a)).min() >= -tol


def test_inverse_root_of_a_diagonal_matrix():
    a = torch.diag(torch.tensor([1.0, 4.0, 16.0], dtype=torch.float64))[None]
    p, used_fp64 = mf.inverse_root_eigh(a, root=2, eps=0.0 + 1e-300)
    torch.testing.assert_close(p[0], torch.diag(torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)))
    assert not used_fp64


def test_inverse_root_of_a_known_matrix_and_batching():
    a, q, eigs = random_spd(6, 1e-2, 1e2)
    b, q2, eigs2 = random_spd(6, 1.0, 10.0, seed=1)
    p, _ = mf.inverse_root_eigh(torch.stack([a, b]), root=4, eps=1e-3)
    torch.testing.assert_close(p[0], (q * (eigs + 1e-3) ** -0.25) @ q.T)
    torch.testing.assert_close(p[1], (q2 * (eigs2 + 1e-3) ** -0.25) @ q2.T)


def test_rank_deficient_input_gets_eps_on_its_null_space():
    v = torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    p, _ = mf.inverse_root_eigh(torch.outer(v, v)[None], root=2, eps=1e-2)
    u = v / 5
    expected = (25 + 1e-2) ** -0.5 * torch.outer(u, u) + 1e-2**-0.5 * (
        torch.eye(3, dtype=torch.float64) - torch.outer(u, u)
    )
    torch.testing.assert_close(p[0], expected)


def test_spectrum_below_eps_is_shifted_up_to_eps():
    a = torch.diag(torch.tensor([-1.0, 2.0], dtype=torch.float64))[None]  # + eps I: (-0.9, 2.1); shift by 1.0
    p, _ = mf.inverse_root_eigh(a, root=1, eps=0.1)
    torch.testing.assert_close(p[0], torch.diag(torch.tensor([1 / 0.1, 1 / 3.1], dtype=torch.float64)))


def test_coupled_newton_matches_the_closed_form():
    a, q, eigs = random_spd(5, 0.1, 10.0)
    x = mf.inverse_root_newton(a[None], root=4, eps=1e-6, tolerance=1e-12)
    torch.testing.assert_close(x[0], (q * (eigs + 1e-6) ** -0.25) @ q.T, rtol=1e-8, atol=1e-8)
    with pytest.raises(ValueError, match="integer root"):
        mf.inverse_root_newton(a[None], root=2.5, eps=0.0)


def test_positive_root_closed_form():
    a, q, eigs = random_spd(5, 1e-3, 1e3)
    torch.testing.assert_close(mf.positive_root(a[None], 4)[0], (q * eigs**0.25) @ q.T)


def test_eigh_failure_retries_in_fp64_then_raises(monkeypatch):
    a, _, _ = random_spd(4, 1.0, 2.0, dtype=torch.float32)
    real = torch.linalg.eigh

    def fail_fp32(x):
        if x.dtype == torch.float32:
            raise torch.linalg.LinAlgError("forced")
        return real(x)

    monkeypatch.setattr(torch.linalg, "eigh", fail_fp32)
    p, used_fp64 = mf.inverse_root_eigh(a[None], root=2, eps=1e-6)
    assert used_fp64 and p.dtype == torch.float32 and torch.isfinite(p).all()

    def always_fail(x):
        raise torch.linalg.LinAlgError("forced")

    monkeypatch.setattr(torch.linalg, "eigh", always_fail)
    with pytest.raises(mf.MatrixFunctionError, match="fp32 and fp64"):
        mf.inverse_root_eigh(a[None], root=2, eps=1e-6)


def test_eigenbasis_is_descending():
    a, _, eigs = random_spd(5, 1.0, 100.0)
    vals, vecs = mf.eigenbasis(a[None])
    torch.testing.assert_close(vals[0], eigs.flip(0))
    torch.testing.assert_close((vecs[0].T @ a @ vecs[0]).diagonal(), eigs.flip(0))


def test_criterion_is_the_relative_error_of_keeping_the_basis():
    a, q, _ = random_spd(6, 0.1, 10.0)
    gen = torch.Generator().manual_seed(3)
    stale, _ = torch.linalg.qr(q + 0.1 * torch.randn(6, 6, generator=gen, dtype=torch.float64))
    crit = mf.basis_criterion(a[None], stale[None])[0]
    b = stale.T @ a @ stale
    approx = stale @ torch.diag(b.diagonal()) @ stale.T
    torch.testing.assert_close(crit, torch.linalg.matrix_norm(a - approx) / torch.linalg.matrix_norm(a))
    assert mf.basis_criterion(a[None], q[None])[0] < 1e-12  # the exact basis


def test_qr_warm_start_needs_descending_order():
    """From the old basis in descending order, QR iterations improve it monotonically; in ascending order the
    unshifted iteration first mixes the columns (it sorts eigenvalues descending) and the basis gets worse."""
    a, q, _ = random_spd(6, 1.0, 50.0)
    gen = torch.Generator().manual_seed(5)
    a_new = a + 0.05 * mf.symmetrize(torch.randn(6, 6, generator=gen, dtype=torch.float64))  # the factor moved
    start = mf.basis_criterion(a_new[None], q[None])[0]
    previous = start
    for iterations in (1, 2, 3):
        q_desc, _ = mf.qr_refine(a_new[None], q.flip(-1)[None], tau=0.0, max_iterations=iterations)
        q_asc, _ = mf.qr_refine(a_new[None], q[None], tau=0.0, max_iterations=iterations)  # random_spd: ascending
        crit_desc, crit_asc = mf.basis_criterion(a_new[None], q_desc)[0], mf.basis_criterion(a_new[None], q_asc)[0]
        assert crit_desc < previous
        assert crit_asc > 5 * start
        previous = crit_desc
    # tau stops the iteration early: one iteration already meets tau = 1e-3 here
    q_tau, _ = mf.qr_refine(a_new[None], q.flip(-1)[None], tau=1e-3, max_iterations=50)
    assert mf.basis_criterion(a_new[None], q_tau)[0] <= 1e-3


def test_power_qr_step_sorts_and_reports_the_permutation():
    a = torch.diag(torch.tensor([1.0, 5.0, 3.0], dtype=torch.float64))[None]
    q, perm = mf.power_qr_step(a, torch.eye(3, dtype=torch.float64)[None])
    assert perm[0].tolist() == [1, 2, 0]
    torch.testing.assert_close((q[0].T @ a[0] @ q[0]).diagonal(), torch.tensor([5.0, 3.0, 1.0], dtype=torch.float64))


class TestKrAD:
    def setup_method(self):
        self.x, _, _ = random_spd(5, 0.5, 5.0)
        gen = torch.Generator().manual_seed(7)
        self.u = torch.randn(5, 3, generator=gen, dtype=torch.float64)
        self.a = self.u @ self.u.T  # rank 3
        self.v = torch.randn(5, 1, generator=gen, dtype=torch.float64)

    def test_star_update_stays_between_exact_inverse_and_x(self):
        new = mf.kradagrad_star_update(self.x, self.u, normalizer=5)
        exact = torch.linalg.inv(torch.linalg.inv(self.x) + self.a)
        assert is_psd(new - exact) and is_psd(self.x - new)
        assert torch.linalg.eigvalsh(new).min() > 0

    def test_star_update_is_sherman_morrison_for_rank_one_with_unit_normaliser(self):
        a = self.v @ self.v.T
        sherman_morrison = self.x - (self.x @ self.v @ self.v.T @ self.x) / (1 + self.v.T @ self.x @ self.v)
        torch.testing.assert_close(mf.kradagrad_star_update(self.x, self.v, normalizer=1), sherman_morrison)
        torch.testing.assert_close(sherman_morrison, torch.linalg.inv(torch.linalg.inv(self.x) + a))

    def test_factored_and_dense_forms_agree(self):
        """u with more columns than d (2d) takes the d x d norm (dense X (u u^T) X) path; all equal the formula."""
        gen = torch.Generator().manual_seed(8)
        wide = torch.randn(5, 12, generator=gen, dtype=torch.float64)
        for u in (self.u, wide):
            a = u @ u.T
            expected = self.x - self.x @ a @ self.x / (5 * (1 + torch.trace(a @ self.x)))
            torch.testing.assert_close(mf.kradagrad_star_update(self.x, u, 5), expected)
            xa = self.x @ a
            expected = self.x - xa @ self.x / (1 + torch.linalg.matrix_norm(xa))
            torch.testing.assert_close(mf.kradagrad_update(self.x, u, 0.0), expected)

    def test_kradagrad_update_stays_positive_definite_and_below_x(self):
        x = self.x
        for scale in (1.0, 1e3, 1e6):
            new = mf.kradagrad_update(x, scale**0.5 * self.u, damping=1e-3)
            assert torch.linalg.eigvalsh(new).min() > 0 and is_psd(x - new)


def test_fp32_x_root_beats_fp32_inverse_root_at_high_condition():
    """KrAD's premise: keeping X = L^-1 and taking X^(1/4) in fp32 is far more accurate than fp32 L^(-1/4).
    Measured here (d = 32): condition 1e8: eigh ~1e-1, X-root ~1e-3; condition 1e10: eigh meets a negative
    eigenvalue and breaks, X-root stays ~1e-2."""
    errors = {}
    for condition in (1e4, 1e8, 1e10):
        a, q, eigs = random_spd(32, 1.0 / condition, 1.0)
        exact = (q * eigs**-0.25) @ q.T
        via_eigh, _ = mf.inverse_root_eigh(a.float()[None], root=4, eps=1e-30)
        via_x = mf.positive_root(torch.linalg.inv(a).float()[None], 4)
        errors[condition] = tuple(relative_error(p[0], exact) for p in (via_eigh, via_x))
    assert errors[1e4][0] < 1e-3 and errors[1e4][1] < 1e-3  # well conditioned: both fine
    assert errors[1e8][1] < errors[1e8][0] / 10
    assert not errors[1e10][0] < 1.0 and errors[1e10][1] < 5e-2  # nan/inf or huge for eigh
    assert errors[1e4][1] < errors[1e8][1] < errors[1e10][1]  # root errors grow with the condition number


def test_qr_refine_stops_each_block_on_its_own():
    """A block whose warm start is within tau of its eigenbasis stops at once while its stack-mate iterates: each
    block's basis equals the one it gets alone (before, the stack iterated until every block converged, so a block's
    basis depended on the blocks stacked with it, and a sharded run, which stacks fewer, differed). Both cores."""
    import jax.numpy as jnp
    import numpy as np

    from precond_jax import matrix_functions as jmf
    from tests.jax_compat import enable_x64

    gen = torch.Generator().manual_seed(4)
    exact = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))[0]
    near = torch.linalg.qr(exact + 1e-8 * torch.randn(6, 6, generator=gen, dtype=torch.float64))[0]  # criterion ~1e-8
    near = near * torch.sign(torch.diagonal(near.T @ exact))  # the columns' signs as exact's
    a = torch.stack([exact @ torch.diag(torch.arange(6.0, 0.0, -1.0, dtype=torch.float64)) @ exact.T,
                     random_spd(6, 0.1, 10.0, seed=5)[0]])  # fmt: skip
    q = torch.stack([near, torch.eye(6, dtype=torch.float64)])
    together, _ = mf.qr_refine(a, q, tau=1e-6, max_iterations=40)
    for i in range(2):
        alone, _ = mf.qr_refine(a[i : i + 1], q[i : i + 1], tau=1e-6, max_iterations=40)
        torch.testing.assert_close(together[i], alone[0], rtol=0, atol=1e-14)
    torch.testing.assert_close(together[0], near, rtol=0, atol=0)  # within tau at once: it did not move
    with enable_x64():
        ours, _ = jmf.qr_refine(jnp.asarray(a.numpy()), jnp.asarray(q.numpy()), 1e-6, 40)
    np.testing.assert_allclose(np.asarray(ours), together.numpy(), rtol=0, atol=1e-12)


def test_newton_roots_stop_each_block_on_its_own():
    """A well-conditioned block converges in fewer coupled-Newton steps than an ill-conditioned stack-mate; each
    block's root equals the one it gets alone (before, a converged block kept iterating: 1e-7-size changes). Both
    cores."""
    import jax.numpy as jnp
    import numpy as np

    from precond_jax import matrix_functions as jmf
    from tests.jax_compat import enable_x64

    a = torch.stack([random_spd(6, 1.0, 2.0, seed=6)[0], random_spd(6, 1e-3, 10.0, seed=7)[0]])
    together = mf.inverse_root_newton(a, 4, 1e-12)
    for i in range(2):
        torch.testing.assert_close(together[i], mf.inverse_root_newton(a[i : i + 1], 4, 1e-12)[0], rtol=0, atol=1e-14)
    with enable_x64():
        ours, ok = jmf.inverse_root_newton(jnp.asarray(a.numpy()), 4, 1e-12)
    assert bool(ok)
    np.testing.assert_allclose(np.asarray(ours), together.numpy(), rtol=0, atol=1e-12)
