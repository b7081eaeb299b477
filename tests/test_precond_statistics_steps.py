"""statistics_compute_steps (Google's distributed_shampoo option): the factor statistics see steps 1, 1 + k, ...;
everything else sees every step. The JAX core's parity with k > 1 is in tests/test_precond_jax_parity.py."""

import math

import pytest
import torch

import precond
from precond.config import KronConfig
from tests.test_precond_optimizers import ALL, grad_sequence, make_model, run

FACTOR_KEYS = ("factors", "inverse_factors")


def factor_state(opt) -> list[torch.Tensor]:
    return [f for bg in opt._groups if bg.preconditioned for key in FACTOR_KEYS for f in bg.state.get(key, [])]


def test_which_steps_accumulate_and_how_many_have():
    cfg = KronConfig(variant="shampoo", statistics_compute_steps=3)
    assert [t for t in range(1, 12) if cfg.statistics_due(t)] == [1, 4, 7, 10]
    assert [cfg.statistics_count(t) for t in range(1, 11)] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    every = KronConfig(variant="shampoo")
    assert all(every.statistics_due(t) and every.statistics_count(t) == t for t in range(1, 11))


@pytest.mark.parametrize("cls", ALL)
def test_factors_are_those_of_the_sampled_gradients_alone(cls):
    """With k = 3 over 10 steps the factor state equals a k = 1 run fed steps 1, 4, 7, 10 only (refreshes off,
    so KrAD's half roots stay fixed; KrADagrad's square schedule then counts accumulations, not steps)."""
    grads = grad_sequence(make_model(), 10)
    kw = dict(start_preconditioning_step=math.inf, betas=(0.9, 0.99), factor_dtype="float64")
    model = make_model()
    opt_k = cls(model.parameters(), statistics_compute_steps=3, **kw)
    run(model, opt_k, grads)
    model = make_model()
    opt_1 = cls(model.parameters(), **kw)
    run(model, opt_1, grads[0::3])
    ours, reference = factor_state(opt_k), factor_state(opt_1)
    assert len(ours) == len(reference) > 0
    for a, b in zip(ours, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0)
    assert not torch.allclose(ours[0], factor_state(_run_every_step(cls, grads, kw))[0])


def _run_every_step(cls, grads, kw):
    model = make_model()
    opt = cls(model.parameters(), **kw)
    run(model, opt, grads)
    return opt


def test_shampoo_roots_by_hand_and_grafting_sees_every_step():
    """Roots at step 10 (refresh every 5) are (L / (1 - b2^4) + eps I)^(-1/4) with L the EMA of G G^T over steps
    1, 4, 7, 10; the Adam grafting state is the k = 1 run's (it sees every step)."""
    b2, eps = 0.99, 1e-6
    grads = grad_sequence(make_model(), 10)
    kw = dict(betas=(0.9, b2), eps=eps, precondition_frequency=5, factor_dtype="float64")
    model = make_model()
    opt = precond.Shampoo(model.parameters(), statistics_compute_steps=3, **kw)
    run(model, opt, grads)
    weight = 0  # model[0].weight, (8, 6), the first parameter
    left = torch.zeros(8, 8, dtype=torch.float64)
    for step in (0, 3, 6, 9):
        g = grads[step][weight].double()
        left = b2 * left + (1 - b2) * g @ g.T
    evals, evecs = torch.linalg.eigh(left / (1 - b2**4) + eps * torch.eye(8, dtype=torch.float64))
    expected = evecs @ torch.diag(evals**-0.25) @ evecs.T
    group = next(bg for bg in opt._groups if bg.shape == (8, 6))
    torch.testing.assert_close(group.state["roots"][0][0], expected, rtol=1e-9, atol=1e-12)
    every = _run_every_step(precond.Shampoo, grads, kw)
    group_every = next(bg for bg in every._groups if bg.shape == (8, 6))
    torch.testing.assert_close(group.state["diagonal"]["second_moment"], group_every.state["diagonal"]["second_moment"])


@pytest.mark.parametrize("cls", [precond.EShampoo, precond.SOAP])
def test_eigenbasis_variants_keep_their_second_moment_every_step(cls):
    """Before any refresh the basis is I, so D is Adam's EMA of g^2 over all steps, whatever k."""
    grads = grad_sequence(make_model(), 7)
    kw = dict(start_preconditioning_step=math.inf, betas=(0.9, 0.99))
    model = make_model()
    opt = cls(model.parameters(), statistics_compute_steps=4, **kw)
    run(model, opt, grads)
    every = _run_every_step(cls, grads, kw)
    for bg, bg_every in zip(opt._groups, every._groups, strict=True):
        if bg.preconditioned:
            torch.testing.assert_close(bg.state["second_moment"], bg_every.state["second_moment"])
            assert not torch.allclose(bg.state["factors"][0], bg_every.state["factors"][0])


def test_statistics_compute_steps_is_checked():
    p = [torch.nn.Parameter(torch.zeros(3, 3))]
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="statistics_compute_steps"):
            precond.Shampoo(p, statistics_compute_steps=bad)
