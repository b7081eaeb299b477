"""What the torch optimizers accept: every honoured option, bad parameters and parameter groups, non-finite
gradients, frozen parameters. Bad options, against both cores: tests/test_option_validation.py."""

import math

import pytest
import torch

import precond
from precond.config import HONOURED
from precond.registry import SPECS

KRON = [getattr(precond, spec.optimizer) for spec in SPECS.values()]
ALL = [*KRON, precond.NAdamW]
OFF = math.inf


def params():
    return [torch.nn.Parameter(torch.zeros(3, 3)), torch.nn.Parameter(torch.zeros(3))]


def raises_one_line(match, build):
    with pytest.raises(ValueError, match=match) as info:
        build()
    assert "\n" not in str(info.value)
    return str(info.value)


SAMPLE = {
    "betas": (0.9, 0.99),
    "eps": 1e-6,
    "graft_eps": 1e-10,
    "precondition_frequency": 2,
    "statistics_compute_steps": 2,
    "start_preconditioning_step": 1,
    "max_preconditioner_dim": 8,
    "nesterov": False,
    "factor_dtype": "float64",
    "max_consecutive_failures": 3,
    "nonfinite": "skip",
    "grafting": "rmsprop",
    "exponent_override": 0.5,
    "root_method": "newton",
    "trace_scaling": False,
    "online": True,
    "damping": 1e-6,
    "refresh_tau": 0.05,
    "basis_method": "qr",
    "max_qr_iterations": 4,
    "second_moment_at_refresh": "follow",
    "statistics_precision": "bfloat16",
}


@pytest.mark.parametrize("cls", KRON)
def test_every_honoured_option_is_accepted_and_runs(cls):
    variant = cls.PRESET["variant"]
    options = {k: v for k, v in SAMPLE.items() if k in HONOURED[variant]}
    if variant == "kradagrad":
        options["betas"] = (0.9, 1.0)  # with adagrad grafting below, plain sums are allowed
        options["grafting"] = "adagrad"
    opt = cls(params(), **options)
    for p in opt.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    opt.step()
    opt.step()
    assert opt.counters["refreshes"] > 0
    if "diagonal" in HONOURED[variant] and cls.PRESET.get("grafting", "adam") is None:
        cls(params(), diagonal="sgd")


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: [torch.zeros(3, 3, dtype=torch.int64)], "dtype torch.int64"),
        (lambda: [torch.zeros(3, 3, dtype=torch.complex64, requires_grad=True)], "dtype torch.complex64"),
        (lambda: [torch.zeros(3, 3).to_sparse().requires_grad_()], "sparse"),
        (lambda: (lambda p: [p, p])(torch.nn.Parameter(torch.zeros(3, 3))), "listed twice"),
        (lambda: (lambda p: [{"params": [p]}, {"params": [p]}])(torch.nn.Parameter(torch.zeros(3))), "more than one"),
    ],
    ids=["integer", "complex", "sparse", "twice-in-a-group", "twice-across-groups"],
)
def test_bad_parameters_fail_at_construction(cls, make, match):
    raises_one_line(match, lambda: cls(make()))


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize(
    "group, match",
    [
        ({"lr": float("nan")}, r"param_groups\[1\]\['lr'\]"),
        ({"weight_decay": -1.0}, r"param_groups\[1\]\['weight_decay'\]"),
        ({"momentum": 0.9}, r"param_groups\[1\] sets momentum"),
    ],
)
def test_bad_parameter_groups_fail_at_construction(cls, group, match):
    first, second = params()
    raises_one_line(match, lambda: cls([{"params": [first]}, {"params": [second], **group}]))


def test_kronecker_groups_take_no_per_group_eps():
    first, second = params()
    raises_one_line("sets eps", lambda: precond.SOAP([{"params": [first]}, {"params": [second], "eps": 1e-3}]))


def model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def gradients(m, steps, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(p.shape, generator=gen) for p in m.parameters()] for _ in range(steps)]


def build(cls, parameters, **kw):
    if cls is precond.NAdamW:
        return cls(parameters, lr=1e-2, **kw)
    return cls(parameters, lr=1e-2, precondition_frequency=1, start_preconditioning_step=1, **kw)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("cls", ALL)
def test_non_finite_gradient_raises_at_once_naming_parameter_and_step(cls, bad):
    m = model()
    opt = build(cls, m.named_parameters())
    grads = gradients(m, 3)
    grads[2][2][1, 3] = bad  # the second layer's weight, at step 3
    for t, step_grads in enumerate(grads, start=1):
        for p, g in zip(m.parameters(), step_grads, strict=True):
            p.grad = g
        if t < 3:
            opt.step()
    before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(
        FloatingPointError,
        match=r"'2\.weight' \(param_groups\[0\]\['params'\]\[2\], shape \(3, 5\)\) "
        r"at step 3",
    ) as info:
        opt.step()
    assert "\n" not in str(info.value) and "nonfinite='skip'" in str(info.value)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters(), strict=True))


@pytest.mark.parametrize("cls", ALL)
def test_unnamed_parameters_are_named_by_place_and_shape(cls):
    p = torch.nn.Parameter(torch.zeros(3, 2))
    opt = build(cls, [p])
    p.grad = torch.full((3, 2), float("nan"))
    with pytest.raises(FloatingPointError, match=r"parameter \(param_groups\[0\]\['params'\]\[0\], shape \(3, 2\)\)"):
        opt.step()


def skip_counter(opt):
    return opt.nonfinite_skips if isinstance(opt, precond.NAdamW) else opt.counters["nonfinite_skips"]


@pytest.mark.parametrize("cls", ALL)
def test_skipped_non_finite_steps_change_nothing_and_are_counted(cls):
    """A run with two non-finite steps skipped equals, bit for bit, the run that never saw them."""
    grads = gradients(model(), 8)
    poisoned = grads[:3] + [[g.clone() for g in grads[3]]] + grads[3:5] + [[g.clone() for g in grads[5]]] + grads[5:]
    poisoned[3][0][0, 0] = float("nan")
    poisoned[6][3][1] = -float("inf")
    runs = []
    for sequence in (grads, poisoned):
        m = model()
        opt = build(cls, m.parameters(), nonfinite="skip")
        for step_grads in sequence:
            for p, g in zip(m.parameters(), step_grads, strict=True):
                p.grad = g
            opt.step()
        runs.append(([p.detach().clone() for p in m.parameters()], skip_counter(opt), opt.state_dict()))
    (clean, clean_skips, _), (skipped, skips, state) = runs
    assert clean_skips == 0 and skips == 2
    assert all(torch.equal(a, b) for a, b in zip(clean, skipped, strict=True))
    restored = build(cls, model().parameters(), nonfinite="skip")
    restored.load_state_dict(state)
    assert skip_counter(restored) == 2


@pytest.mark.parametrize("cls", KRON)
def test_frozen_parameters_do_not_move_and_the_rest_is_adamw(cls):
    """The first layer is frozen (grad None): torch.optim.AdamW leaves it alone, weight decay included. With
    preconditioning off and no Nesterov, Shampoo's Adam graft and EShampoo/SOAP's identity basis are AdamW on the
    rest; every variant leaves the frozen layer exactly as it was."""
    ours, reference = model(), model()
    for m in (ours, reference):
        m[0].requires_grad_(False)
    kw = dict(lr=1e-2, weight_decay=0.1, start_preconditioning_step=OFF, nesterov=False)
    if cls in (precond.KrADagrad, precond.KrADagradStar):
        kw.update(betas=(0.9, 0.999), **({"grafting": "adam"} if cls is precond.KrADagrad else {"diagonal": "adam"}))
    opt = cls(ours.parameters(), **kw)
    adamw = torch.optim.AdamW(reference.parameters(), lr=1e-2, weight_decay=0.1)
    frozen_before = [p.detach().clone() for p in ours[0].parameters()]
    for t in range(6):
        for m, o in ((ours, opt), (reference, adamw)):
            o.zero_grad(set_to_none=True)
            torch.manual_seed(t)
            m(torch.randn(7, 4)).square().mean().backward()
            o.step()
    assert all(torch.equal(a, b) for a, b in zip(frozen_before, ours[0].parameters(), strict=True))
    for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", ALL)
def test_a_parameter_without_gradient_this_step_does_not_move(cls):
    m = model()
    opt = build(cls, m.parameters())
    for g_step in gradients(m, 3):
        for p, g in zip(m.parameters(), g_step, strict=True):
            p.grad = g
        opt.step()
    for group in opt.param_groups:
        group["weight_decay"] = 0.5
    m[2].weight.grad = None
    before = [p.detach().clone() for p in m.parameters()]
    opt.step()
    after = list(m.parameters())
    assert torch.equal(before[2], after[2]) and not any(torch.equal(before[i], after[i]) for i in (0, 1, 3))


@pytest.mark.parametrize("cls", ALL)
def test_finite_gradients_whose_sum_overflows_are_not_taken_for_non_finite(cls):
    """The fast check sums each gradient; a finite gradient whose fp32 sum overflows is checked exactly."""
    p = torch.nn.Parameter(torch.zeros(2, 2))
    opt = cls([p], nonfinite="skip", **({} if cls is precond.NAdamW else {"start_preconditioning_step": OFF}))
    p.grad = torch.full((2, 2), 3e38)
    assert torch.isinf(p.grad.sum())
    opt.step()
    steps = int(opt.state[p]["step"]) if cls is precond.NAdamW else opt._step
    assert skip_counter(opt) == 0 and steps == 1
