"""The Kronecker optimizers against the reference behaviours of docs/algorithms.md."""

import copy
import io
import math

import pytest
import torch

import precond
from precond import matrix_functions as mf
from precond.registry import SPECS

ALL = [getattr(precond, spec.optimizer) for spec in SPECS.values()]


def make_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def grad_sequence(model, steps, seed=1, scale=1.0):
    """Deterministic synthetic gradients, one list per step."""
    gen = torch.Generator().manual_seed(seed)
    return [[scale * torch.randn(p.shape, generator=gen) for p in model.parameters()] for _ in range(steps)]


def run(model, opt, grads):
    for step_grads in grads:
        for p, g in zip(model.parameters(), step_grads, strict=True):
            p.grad = g.clone()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def assert_same_run(make_ours, make_reference, steps=8, **tol):
    a, b = make_model(), make_model()
    grads = grad_sequence(a, steps)
    ours = run(a, make_ours(a.parameters()), grads)
    ref = run(b, make_reference(b.parameters()), grads)
    for x, y in zip(ours, ref, strict=True):
        torch.testing.assert_close(x, y, **(tol or {"rtol": 1e-5, "atol": 1e-6}))


OFF = math.inf  # start_preconditioning_step: never refresh


class TestPreconditioningOffIsTheBaseMethod:
    def test_shampoo_adam_graft_is_adamw(self):
        assert_same_run(
            lambda p: precond.Shampoo(p, lr=1e-2, weight_decay=0.1, nesterov=False, start_preconditioning_step=OFF),
            lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
        )

    def test_shampoo_nesterov_is_nadamw(self):
        assert_same_run(
            lambda p: precond.Shampoo(p, lr=1e-2, weight_decay=0.1, start_preconditioning_step=OFF),
            lambda p: precond.NAdamW(p, lr=1e-2, weight_decay=0.1),
        )

    def test_adagrad_rmsprop_sgd_grafts(self):
        base = dict(lr=1e-2, start_preconditioning_step=OFF)
        assert_same_run(
            lambda p: precond.Shampoo(p, grafting="adagrad", betas=(0.0, 0.999), graft_eps=1e-10, **base),
            lambda p: torch.optim.Adagrad(p, lr=1e-2, eps=1e-10),
        )
        assert_same_run(
            lambda p: precond.Shampoo2(p, grafting="rmsprop", betas=(0.0, 0.9), **base),
            lambda p: torch.optim.RMSprop(p, lr=1e-2, alpha=0.9, eps=1e-8),
        )
        assert_same_run(
            lambda p: precond.Shampoo(p, grafting="sgd", betas=(0.0, 0.999), **base),
            lambda p: torch.optim.SGD(p, lr=1e-2),
        )

    @pytest.mark.parametrize("cls", [precond.EShampoo, precond.SOAP])
    def test_identity_basis_is_adamw(self, cls):
        assert_same_run(
            lambda p: cls(p, lr=1e-2, weight_decay=0.1, eps=1e-8, nesterov=False, start_preconditioning_step=OFF),
            lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1, eps=1e-8),
        )

    @pytest.mark.parametrize("cls", [precond.KrADagrad, precond.KrADagradStar])
    def test_krad_diagonal_is_adagrad(self, cls):
        assert_same_run(
            lambda p: cls(p, lr=1e-2, betas=(0.0, 1.0), graft_eps=1e-10, start_preconditioning_step=OFF),
            lambda p: torch.optim.Adagrad(p, lr=1e-2, eps=1e-10),
        )


def single_param_updates(cls, scale, steps=6, **kw):
    """Parameter changes of a (5, 4) matrix under gradients multiplied by ``scale``."""
    w = torch.nn.Parameter(torch.zeros(5, 4))
    # From step 2 the factors (two 5x4 gradients) have full rank: at rank 4 of 5 a tiny eps amplifies rounding
    # noise in the null space, and no method is scale invariant to test precision there.
    options = {"lr": 1.0, "start_preconditioning_step": 2, "precondition_frequency": 1, "factor_dtype": "float64"}
    opt = cls([w], **{**options, **kw})
    gen = torch.Generator().manual_seed(2)
    deltas = []
    for _ in range(steps):
        before = w.detach().clone()
        w.grad = scale * torch.randn(5, 4, generator=gen)
        opt.step()
        deltas.append(w.detach() - before)
    return torch.stack(deltas).double()


class TestGradientScale:
    """Gradients x10: Shampoo (-1/4), EShampoo and Adam unchanged; Shampoo2 10x smaller unless trace-scaled."""

    @pytest.mark.parametrize(
        "cls, kw",
        [
            (precond.Shampoo, dict(grafting=None, eps=1e-12)),
            (precond.EShampoo, dict(eps=1e-12, refresh_tau=0.0)),
            (precond.Shampoo2, dict(grafting=None, eps=1e-12, trace_scaling=True)),
            (precond.Shampoo, dict(grafting="adam", eps=1e-12, graft_eps=1e-12, start_preconditioning_step=OFF)),
        ],
    )
    def test_invariant(self, cls, kw):
        torch.testing.assert_close(
            single_param_updates(cls, 10.0, **kw), single_param_updates(cls, 1.0, **kw), rtol=1e-4, atol=1e-7
        )

    def test_shampoo2_without_trace_scaling_shrinks_tenfold(self):
        """From the first preconditioned step (2); step 1 is the scale-invariant diagonal (Adam) method."""
        kw = dict(grafting=None, eps=1e-12, trace_scaling=False)
        big, small = (
            single_param_updates(precond.Shampoo2, 10.0, **kw),
            single_param_updates(precond.Shampoo2, 1.0, **kw),
        )
        torch.testing.assert_close(big[1:], small[1:] / 10, rtol=1e-4, atol=1e-7)


def test_frozen_basis_eshampoo_is_adam_on_rotated_gradients():
    gen = torch.Generator().manual_seed(4)
    ql, _ = torch.linalg.qr(torch.randn(5, 5, generator=gen))
    qr, _ = torch.linalg.qr(torch.randn(4, 4, generator=gen))
    w = torch.nn.Parameter(torch.randn(5, 4, generator=gen))
    w_rot = torch.nn.Parameter((ql.T @ w.detach() @ qr).clone())
    opt = precond.EShampoo([w], lr=1e-2, eps=1e-8, nesterov=False, start_preconditioning_step=OFF)
    opt._groups[0].state["bases"] = [ql[None].clone(), qr[None].clone()]
    adam = torch.optim.Adam([w_rot], lr=1e-2, eps=1e-8)
    for _ in range(10):
        g = torch.randn(5, 4, generator=gen)
        w.grad, w_rot.grad = g, ql.T @ g @ qr
        opt.step()
        adam.step()
    torch.testing.assert_close(w.detach(), ql @ w_rot.detach() @ qr.T, rtol=1e-5, atol=1e-6)


@pytest.mark.integration
@pytest.mark.parametrize("cls", ALL)
def test_state_dict_round_trip_continues_bit_identically(cls):
    model = make_model()
    opt = cls(model.parameters(), lr=1e-2, precondition_frequency=3, start_preconditioning_step=2)
    grads = grad_sequence(model, 20)
    run(model, opt, grads[:9])
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    clone = make_model(seed=99)
    clone.load_state_dict(saved["model"])
    opt2 = cls(clone.parameters(), lr=1e-2, precondition_frequency=3, start_preconditioning_step=2)
    opt2.load_state_dict(saved["opt"])
    a, b = run(model, opt, grads[9:]), run(clone, opt2, grads[9:])
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert opt.counters == opt2.counters and opt.counters["refreshes"] > 0


@pytest.mark.parametrize("cls", ALL)
def test_a_learning_rate_set_after_a_load_reaches_every_block(cls):
    """torch.optim's load_state_dict replaces the group dicts: a schedule that sets lr and weight_decay after a
    load (as every resumed trial does) must move the loaded optimizer as it moves the one that never stopped."""
    model = make_model()
    opt = cls(model.parameters(), lr=1e-2, precondition_frequency=3, start_preconditioning_step=2)
    grads = grad_sequence(model, 12)
    run(model, opt, grads[:5])
    clone = make_model(seed=99)
    clone.load_state_dict(model.state_dict())
    opt2 = cls(clone.parameters(), lr=1e-2, precondition_frequency=3, start_preconditioning_step=2)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    for o in (opt, opt2):
        for group in o.param_groups:
            group["lr"], group["weight_decay"] = 3e-3, 0.1
    a, b = run(model, opt, grads[5:]), run(clone, opt2, grads[5:])
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def ill_conditioned_loss(seed=0, m=8, n=6):
    """f(W) = 0.5 tr(W^T H0 W H1) = 0.5 vec(W)^T (H1 (x) H0) vec(W), factor eigenvalues over [1e-3, 10]."""
    gen = torch.Generator().manual_seed(seed)

    def spd(d):
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen))
        return (q * torch.logspace(-3, 1, d)) @ q.T

    h0, h1 = spd(m), spd(n)
    w0 = torch.randn(m, n, generator=gen)
    return (lambda w: 0.5 * torch.trace(w.T @ h0 @ w @ h1)), w0


def best_final_loss(make_opt, lrs, steps=150):
    f, w0 = ill_conditioned_loss()
    best = math.inf
    for lr in lrs:
        w = torch.nn.Parameter(w0.clone())
        opt = make_opt([w], lr)
        try:
            for _ in range(steps):
                opt.zero_grad()
                loss = f(w)
                loss.backward()
                opt.step()
        except FloatingPointError:  # the optimizer's own report of a diverged run
            continue
        final = f(w).item()
        best = min(best, final if math.isfinite(final) else math.inf)
    return best


# Ungrafted KrADagrad (the paper's default) did not beat SGD here at any lr (best ~1.5e2 vs 0.32, divergent above
# 1e-3); grafted as in the authors' code it does, by far.
KRAD_GRAFTED = {"grafting": "adam", "betas": (0.9, 0.999)}


@pytest.mark.integration
@pytest.mark.parametrize("cls", ALL)
def test_every_variant_beats_sgd_on_an_ill_conditioned_quadratic(cls):
    """150 full-batch steps, each optimizer at its best lr of a small grid; SGD's grid reaches its stability edge."""
    lrs = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]
    extra = KRAD_GRAFTED if cls is precond.KrADagrad else {}
    sgd = best_final_loss(lambda p, lr: torch.optim.SGD(p, lr=lr), [1e-2, 3e-2, 1e-1, 0.19])
    ours = best_final_loss(
        lambda p, lr: cls(p, lr=lr, precondition_frequency=5, start_preconditioning_step=5, **extra), lrs
    )
    assert ours < sgd / 2, (ours, sgd)


class TestFailuresAndCounters:
    def test_forced_eigh_failures_keep_the_previous_root_then_raise(self, monkeypatch):
        model = make_model()
        opt = precond.Shampoo(
            model.parameters(),
            lr=1e-2,
            precondition_frequency=1,
            start_preconditioning_step=1,
            max_consecutive_failures=3,
        )
        grads = grad_sequence(model, 10)
        run(model, opt, grads[:2])
        assert opt.counters["refreshes"] > 0 and opt.counters["failures"] == 0
        roots_before = [r.clone() for r in opt._groups[0].state["roots"]]

        def fail(x):
            raise torch.linalg.LinAlgError("forced")

        monkeypatch.setattr(torch.linalg, "eigh", fail)
        run(model, opt, grads[2:3])
        assert opt.counters["failures"] == 2 and opt.counters["fallbacks"] == 2  # two preconditioned block groups
        assert all(torch.equal(a, b) for a, b in zip(roots_before, opt._groups[0].state["roots"], strict=True))
        run(model, opt, grads[3:4])
        with pytest.raises(mf.MatrixFunctionError, match="3 refreshes in a row failed"):
            run(model, opt, grads[4:5])

    def test_fp64_retry_is_counted(self, monkeypatch):
        real = torch.linalg.eigh
        monkeypatch.setattr(
            torch.linalg,
            "eigh",
            lambda x: (_ for _ in ()).throw(torch.linalg.LinAlgError("f")) if x.dtype == torch.float32 else real(x),
        )
        model = make_model()
        opt = precond.Shampoo(model.parameters(), precondition_frequency=1, start_preconditioning_step=1)
        run(model, opt, grad_sequence(model, 2))
        assert opt.counters["fp64_retries"] > 0 and opt.counters["failures"] == 0

    def test_non_finite_factors_raise_with_advice(self):
        model = make_model()
        opt = precond.Shampoo(model.parameters(), precondition_frequency=1, start_preconditioning_step=1)
        grads = grad_sequence(model, 1)
        grads[0][0][0, 0] = float("nan")
        with pytest.raises(FloatingPointError, match="lower the learning rate"):
            run(model, opt, grads)

    @pytest.mark.integration
    def test_eshampoo_criterion_skips_refreshes(self):
        model = make_model()
        always = precond.EShampoo(
            make_model().parameters(), precondition_frequency=1, start_preconditioning_step=1, refresh_tau=0.0
        )
        lazy = precond.EShampoo(
            model.parameters(), precondition_frequency=1, start_preconditioning_step=1, refresh_tau=0.3
        )
        grads = grad_sequence(model, 30, scale=1.0)
        run(make_model(), always, grads)
        run(model, lazy, grads)
        assert always.counters["skipped"] == 0 and lazy.counters["skipped"] > 0
        assert lazy.counters["refreshes"] + lazy.counters["skipped"] == always.counters["refreshes"]
        rows = lazy.refresh_counts()
        assert sum(sum(r["counts"]) for r in rows) == lazy.counters["refreshes"]
        assert all(0 < c <= 30 for r in rows for c in r["counts"])  # at most one refresh per step and block

    @pytest.mark.integration
    def test_soap_criterion_skips_power_steps_after_its_first_refresh(self):
        model = make_model()
        grads = grad_sequence(model, 30, scale=1.0)
        kw = dict(precondition_frequency=1, start_preconditioning_step=1)
        always, lazy = (
            precond.SOAP(make_model().parameters(), **kw),
            precond.SOAP(model.parameters(), refresh_tau=0.3, **kw),
        )
        run(make_model(), always, grads)
        run(model, lazy, grads)
        assert always.counters["skipped"] == 0 and lazy.counters["skipped"] > 0
        assert lazy.counters["refreshes"] + lazy.counters["skipped"] == always.counters["refreshes"]
        assert all(r["counts"] == [30] * len(r["counts"]) for r in always.refresh_counts())  # tau = 0: every step
        assert {r["factor"] for r in always.refresh_counts()} == {0, 1}
        assert all(torch.isfinite(p).all() for p in model.parameters())


def test_same_shaped_blocks_are_refreshed_in_one_batched_call(monkeypatch):
    layers = torch.nn.ModuleList([torch.nn.Linear(16, 16, bias=False) for _ in range(4)])
    big = torch.nn.Parameter(torch.randn(32, 16))  # max_preconditioner_dim 16: two (16, 16) blocks
    params = list(layers.parameters()) + [big]
    opt = precond.Shampoo(params, precondition_frequency=1, start_preconditioning_step=1, max_preconditioner_dim=16)
    calls = []
    real = torch.linalg.eigh
    monkeypatch.setattr(torch.linalg, "eigh", lambda x: calls.append(tuple(x.shape)) or real(x))
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()
    assert calls == [(6, 16, 16), (6, 16, 16)]  # six blocks, one call per factor dimension


def test_factor_dtype_float64():
    model = make_model()
    opt = precond.Shampoo(
        model.parameters(), factor_dtype="float64", precondition_frequency=1, start_preconditioning_step=1
    )
    run(model, opt, grad_sequence(model, 3))
    assert opt._groups[0].state["roots"][0].dtype == torch.float64
    assert all(p.dtype == torch.float32 for p in model.parameters())
    copy.deepcopy(opt.state_dict())


@pytest.mark.parametrize(
    "cls, kw",
    [
        (precond.EShampoo, {"refresh_tau": 0.0, "second_moment_at_refresh": "follow"}),
        (precond.EShampoo, {"refresh_tau": 0.0, "basis_method": "qr", "second_moment_at_refresh": "follow"}),
        (precond.SOAP, {}),
    ],
)
def test_second_moment_follows_a_re_sorted_basis(cls, kw):
    """Gradients diag(1, 2, 3) give diagonal factors: every refresh returns the identity's columns re-sorted
    (descending) with signs. A re-sorted basis must not change the step, so the run equals the never-refreshed
    one (identity basis: Adam) only if the second moment (and SOAP's rotated first moment) move with the columns."""

    def trajectory(start):
        w = torch.nn.Parameter(torch.zeros(3, 3))
        opt = cls([w], lr=1e-2, nesterov=False, precondition_frequency=2, start_preconditioning_step=start, **kw)
        out = []
        for t in range(1, 9):
            w.grad = torch.diag(torch.tensor([1.0, 2.0, 3.0])) * (1 + 0.1 * t)
            opt.step()
            out.append(w.detach().clone())
        return torch.stack(out), opt

    refreshed, opt = trajectory(start=3)
    assert opt.counters["refreshes"] > 0
    never, _ = trajectory(start=OFF)
    torch.testing.assert_close(refreshed, never, rtol=1e-5, atol=1e-7)


def test_online_shampoo2_starts_from_the_identity_then_differs():
    grads = grad_sequence(make_model(), 3)
    factors = {}
    for online in (False, True):
        model = make_model()
        opt = precond.Shampoo2(model.parameters(), online=online, start_preconditioning_step=OFF)
        run(model, opt, grads[:1])
        first = [f.clone() for f in opt._groups[0].state["factors"]]
        run(model, opt, grads[1:])
        factors[online] = (first, opt._groups[0].state["factors"])
    for a, b in zip(factors[False][0], factors[True][0], strict=True):  # identity estimates: one power step = L, R
        torch.testing.assert_close(a, b)
    assert not torch.allclose(factors[False][1][0], factors[True][1][0])


def test_kradagrad_updates_the_largest_factor_and_the_others_on_square_steps():
    variant = precond.KrADagrad([torch.nn.Parameter(torch.zeros(2, 2))]).variant
    schedule = {t: variant.factors_to_update((8, 6, 4), t) for t in range(1, 11)}
    assert schedule[1] == schedule[4] == schedule[9] == [1, 2]
    assert all(schedule[t] == [0] for t in (2, 3, 5, 6, 7, 8, 10))


def test_exponent_override_turns_shampoo_into_untraced_shampoo2():
    kw = dict(lr=1e-2, grafting=None, eps=1e-6, precondition_frequency=2, start_preconditioning_step=2)
    assert_same_run(
        lambda p: precond.Shampoo(p, exponent_override=0.5, **kw),
        lambda p: precond.Shampoo2(p, trace_scaling=False, **kw),
    )


def test_coupled_newton_roots_match_eigh_roots():
    kw = dict(lr=1e-2, factor_dtype="float64", precondition_frequency=2, start_preconditioning_step=2, eps=1e-4)
    assert_same_run(
        lambda p: precond.Shampoo(p, root_method="newton", **kw),
        lambda p: precond.Shampoo(p, **kw),
        rtol=1e-4,
        atol=1e-6,
    )


def test_parameter_groups_can_opt_out_of_preconditioning():
    a, b = make_model(), make_model()
    grads = grad_sequence(a, 6)
    first, rest = list(a.parameters())[:2], list(a.parameters())[2:]
    ours = precond.Shampoo(
        [{"params": first, "precondition": False}, {"params": rest}],
        lr=1e-2,
        nesterov=False,
        precondition_frequency=1,
        start_preconditioning_step=1,
    )
    run(a, ours, grads)
    reference = torch.optim.AdamW(list(b.parameters())[:2], lr=1e-2, weight_decay=0.0)
    for step_grads in grads:
        for p, g in zip(list(b.parameters())[:2], step_grads[:2], strict=True):
            p.grad = g.clone()
        reference.step()
    for x, y in zip(list(a.parameters())[:2], list(b.parameters())[:2], strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
    assert ours.counters["refreshes"] > 0  # the other group was preconditioned


def test_non_contiguous_parameters_and_late_groups_are_refused():
    conv = torch.nn.Conv2d(4, 8, 3).to(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="not contiguous"):
        precond.Shampoo(conv.parameters())
    opt = precond.Shampoo(make_model().parameters())
    with pytest.raises(NotImplementedError, match="constructor"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2, 2))]})


def second_moment_carry_over(cls, frequency, refreshes=200, **kw):
    """Runs ``refreshes`` refreshes on random gradients and checks, at each, that every block's second moment D
    after the refresh holds exactly the entries it held before (a permutation: none duplicated or dropped).
    Returns how many refreshes moved D at all."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.zeros(8, 6)), torch.nn.Parameter(torch.zeros(5, 4, 3))]
    opt = cls(params, precondition_frequency=frequency, start_preconditioning_step=frequency, refresh_tau=0.0, **kw)
    variant, moved = opt.variant, []
    real_refresh = variant.refresh

    def checked_refresh(state, step, counters):
        before = state["second_moment"].clone()
        real_refresh(state, step, counters)
        after = state["second_moment"]
        for b in range(len(before)):
            assert torch.equal(after[b].flatten().sort().values, before[b].flatten().sort().values), step
        moved.append(not torch.equal(after, before))

    variant.refresh = checked_refresh
    gen = torch.Generator().manual_seed(1)
    for _ in range(refreshes * frequency):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen) * torch.rand((), generator=gen) * 3
        opt.step()
    assert len(moved) == refreshes * len(opt._groups)
    return sum(moved)


@pytest.mark.integration
@pytest.mark.parametrize("frequency", [1, 10])
@pytest.mark.parametrize(
    "cls, kw",
    [
        (precond.EShampoo, {"second_moment_at_refresh": "follow"}),
        (precond.EShampoo, {"basis_method": "qr", "max_qr_iterations": 3, "second_moment_at_refresh": "follow"}),
        (precond.SOAP, {}),
    ],
    ids=["eshampoo-eigh", "eshampoo-qr", "soap"],
)
def test_second_moment_is_a_permutation_after_every_refresh(cls, kw, frequency):
    """Closest-column matching (the old rule) duplicated and dropped entries here in most runs."""
    assert second_moment_carry_over(cls, frequency, **kw) > 0  # the bases did re-order: the check had work to do


@pytest.mark.integration
@pytest.mark.parametrize(
    "cls, kw",
    [
        (precond.EShampoo, {}),
        (precond.EShampoo, {"basis_method": "qr"}),
        (precond.SOAP, {"second_moment_at_refresh": "position"}),
    ],
    ids=["eshampoo-eigh", "eshampoo-qr", "soap"],
)
def test_position_rule_leaves_the_second_moment_in_place_and_sorts_bases_ascending(cls, kw):
    """Meta's rule (EShampoo's preset): no refresh moves D, and every EShampoo basis is in ascending
    Rayleigh-quotient order (eigh's, or the QR iteration's columns sorted as Meta sorts them; SOAP sorts before its
    power step, as its reference order)."""
    assert second_moment_carry_over(cls, 5, refreshes=20, **kw) == 0
    if cls is precond.SOAP:
        return
    opt = cls([torch.nn.Parameter(torch.zeros(8, 6))], precondition_frequency=1, start_preconditioning_step=1, **kw)
    gen = torch.Generator().manual_seed(2)
    for _ in range(4):
        opt.param_groups[0]["params"][0].grad = torch.randn(8, 6, generator=gen)
        opt.step()
    state = opt._groups[0].state
    for f, q in zip(state["factors"], state["bases"], strict=True):
        rayleigh = torch.einsum("bij,bik,bkj->bj", q, f, q)
        assert (rayleigh.diff(dim=-1) >= 0).all()


NESTEROV_UPDATES = [1.5, 7 / 6, -9 / 14]  # (b1 m + (1 - b1) g) / (1 - b1^t), b1 = 0.5, g = 1, 1, -1
PLAIN_UPDATES = [1.0, 1.0, -1 / 7]  # m / (1 - b1^t)


@pytest.mark.parametrize(
    "cls, kw, default_nesterov",
    [
        (precond.Shampoo, {"graft_eps": 1e-12}, True),
        (precond.Shampoo2, {"graft_eps": 1e-12}, True),
        (precond.KrADagrad, {"grafting": "adam", "graft_eps": 1e-12}, True),
        (precond.KrADagradStar, {"diagonal": "adam", "graft_eps": 1e-12}, True),
        (precond.EShampoo, {"eps": 1e-12}, True),
        (precond.SOAP, {"eps": 1e-12}, False),
    ],
)
def test_first_moment_estimate_by_hand(cls, kw, default_nesterov):
    """Gradients c_t S with |S| = 1 and c = (1, 1, -1): Adam's bias-corrected second moment is exactly 1, so with
    lr = 1 the step is the first-moment estimate itself, worked out by hand for b1 = 0.5 (the preset's default
    estimate first, then the other one)."""
    sign = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    for nesterov in (None, not default_nesterov):
        w = torch.nn.Parameter(torch.zeros(3, 2))
        extra = {} if nesterov is None else {"nesterov": nesterov}
        opt = cls([w], lr=1.0, betas=(0.5, 0.999), start_preconditioning_step=OFF, **kw, **extra)
        expected = NESTEROV_UPDATES if (default_nesterov if nesterov is None else nesterov) else PLAIN_UPDATES
        for c, u in zip((1.0, 1.0, -1.0), expected, strict=True):
            before = w.detach().clone()
            w.grad = c * sign
            opt.step()
            torch.testing.assert_close(before - w.detach(), u * sign, rtol=1e-5, atol=1e-6)
