"""precond.NAdamW against a float64 hand reference and against torch.optim.AdamW where they coincide."""

import io

import pytest
import torch

from precond import NAdamW


def reference_nadamw(p, grads, lr, b1, b2, eps, wd):
    """The NAdamW recursion written out in float64."""
    p, m, v = p.double().clone(), torch.zeros_like(p, dtype=torch.float64), torch.zeros_like(p, dtype=torch.float64)
    for t, g in enumerate(grads, start=1):
        g = g.double()
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr / (1 - b1**t) * (b1 * m + (1 - b1) * g) / (torch.sqrt(v / (1 - b2**t)) + eps)
    return p


def run(opt_cls, p0, grads, **kw):
    p = torch.nn.Parameter(p0.clone())
    opt = opt_cls([p], **kw)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach()


@pytest.fixture
def problem():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(5, 3, generator=gen), [torch.randn(5, 3, generator=gen) for _ in range(20)]


def test_matches_float64_reference(problem):
    p0, grads = problem
    kw = dict(lr=3e-3, betas=(0.95, 0.99), eps=1e-8, weight_decay=0.1)
    got = run(NAdamW, p0, grads, **kw)
    want = reference_nadamw(p0, grads, 3e-3, 0.95, 0.99, 1e-8, 0.1)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


def test_equals_adamw_without_first_moment(problem):
    """With beta1 = 0 the Nesterov numerator is the gradient itself: NAdamW is AdamW."""
    p0, grads = problem
    kw = dict(lr=1e-2, betas=(0.0, 0.999), eps=1e-8, weight_decay=0.05)
    torch.testing.assert_close(run(NAdamW, p0, grads, **kw), run(torch.optim.AdamW, p0, grads, **kw))


def test_first_step_by_hand(problem):
    """t = 1: m = (1-b1) g, numerator b1 m + (1-b1) g = (1-b1)(1+b1) g, over 1-b1 -> (1+b1) g; v-hat = g^2.
    So with a tiny eps every entry moves by exactly (1 + b1) lr against its gradient's sign (AlgoPerf's NAdamW)."""
    p0, grads = problem
    got = run(NAdamW, p0, grads[:1], lr=1e-3, betas=(0.9, 0.999), eps=1e-12, weight_decay=0.0)
    torch.testing.assert_close(got, p0 - 1.9e-3 * torch.sign(grads[0]))


def test_state_dict_round_trip_continues_identically(problem):
    p0, grads = problem
    a = torch.nn.Parameter(p0.clone())
    opt_a = NAdamW([a], lr=1e-2, weight_decay=0.1)
    for g in grads[:10]:
        a.grad = g.clone()
        opt_a.step()
    b = torch.nn.Parameter(a.detach().clone())
    opt_b = NAdamW([b], lr=1e-2, weight_decay=0.1)
    buffer = io.BytesIO()
    torch.save(opt_a.state_dict(), buffer)
    buffer.seek(0)
    opt_b.load_state_dict(torch.load(buffer, weights_only=True))
    for g in grads[10:]:
        a.grad, b.grad = g.clone(), g.clone()
        opt_a.step()
        opt_b.step()
    assert torch.equal(a, b)


def test_rejects_bad_arguments():
    p = [torch.nn.Parameter(torch.zeros(2))]
    for kw in (dict(lr=-1.0), dict(betas=(1.0, 0.9)), dict(eps=-1.0), dict(weight_decay=-0.1)):
        with pytest.raises(ValueError, match="NAdamW"):
            NAdamW(p, **kw)


def test_step_returns_the_closures_loss():
    p = torch.nn.Parameter(torch.ones(3))
    opt = NAdamW([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 3.0 and (p < 1).all()
