"""The JAX core against the torch core: same parameters, same gradient sequence, every variant.

fp64 (torch float64, JAX under ``tests.jax_compat.enable_x64``, a context manager, so other tests keep JAX's float32
default): 100 steps at refresh frequency 1 and 10, max relative parameter difference <= 1e-10. fp32: 10 steps,
<= 1e-5. The parameters: a conv weight, an embedding routed to the diagonal method, a 1-D bias, a matrix
blocked at max_preconditioner_dim and an order-3 tensor. Relative difference: max |p_jax - p_torch| over
max |p_torch|, per parameter, the worst parameter.

Rank-deficient factors: while a factor is rank-deficient its eigenbasis is not unique (two LAPACKs may return
different bases of the null space), which EShampoo and SOAP carry in their state. At frequency 1 they start
preconditioning at step 3 (fp64 and fp32), when every factor here has full rank; before that both cores take Adam's
steps (identity basis), which are basis-independent, so the comparison is strict from step 1 to step 100.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import precond
import precond_jax
from precond.registry import TORCH_NAMES
from tests.jax_compat import enable_x64

# (shape, preconditioned): conv (c_out, c_in, kh, kw), embedding table (routed to the diagonal method), bias,
# a matrix split into (8, 5) and (4, 5) blocks at max_preconditioner_dim 8, an order-3 tensor.
PARAMS = [((3, 2, 2, 2), True), ((20, 4), False), ((5,), True), ((12, 5), True), ((3, 4, 5), True)]
MAX_DIM = 8
TORCH = {name: getattr(precond, cls) for name, cls in TORCH_NAMES.items()}
LR, WD = 1e-2, 0.1


def problem(steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(shape) for shape, _ in PARAMS]
    grads = [[rng.standard_normal(shape) for shape, _ in PARAMS] for _ in range(steps)]
    return params, grads


def torch_run(variant, params, grads, dtype, options):
    ps = [torch.nn.Parameter(torch.tensor(p, dtype=dtype)) for p in params]
    if variant == "nadamw":
        opt = precond.NAdamW(ps, lr=LR, weight_decay=WD)
    else:
        routed = [(p, pre) for p, (_, pre) in zip(ps, PARAMS, strict=True)]
        groups = [
            {"params": [p for p, pre in routed if pre]},
            {"params": [p for p, pre in routed if not pre], "precondition": False},
        ]
        opt = TORCH[variant](groups, lr=LR, weight_decay=WD, max_preconditioner_dim=MAX_DIM, **options)
    for step in grads:
        for p, g in zip(ps, step, strict=True):
            p.grad = torch.tensor(g, dtype=dtype)
        opt.step()
    return [p.detach().numpy() for p in ps]


def jax_run(variant, params, grads, dtype, options):
    if variant == "nadamw":
        opt = precond_jax.nadamw(LR, weight_decay=WD)
    else:
        route = [pre for _, pre in PARAMS]
        opt = getattr(precond_jax, variant)(
            LR, weight_decay=WD, precondition=route, max_preconditioner_dim=MAX_DIM, **options
        )
    ps = [jnp.asarray(p, dtype) for p in params]
    state = opt.init(ps)

    @jax.jit
    def step(ps, state, gs):
        updates, state = opt.update(gs, state, ps)
        return optax.apply_updates(ps, updates), state

    for gs in grads:
        ps, state = step(ps, state, [jnp.asarray(g, dtype) for g in gs])
    precond_jax.check(state)
    return [np.asarray(p) for p in ps], precond_jax.counters(state)


def max_relative_difference(ours, reference) -> float:
    return max(float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(ours, reference, strict=True))


def options_for(variant: str, frequency: int, dtype: str) -> dict:
    if variant == "nadamw":
        return {}
    options = {"precondition_frequency": frequency, "factor_dtype": dtype}
    if variant in ("eshampoo", "soap") and frequency == 1:
        options["start_preconditioning_step"] = 3  # every factor full rank (module docstring)
    return options


CASES = [("nadamw", 1, {})] + [(v, f, {}) for v in TORCH if v != "nadamw" for f in (1, 10)]
# each eigenbasis variant with the other second-moment rule than its preset's
CASES += [
    ("eshampoo", 10, {"second_moment_at_refresh": "follow"}),
    ("soap", 10, {"second_moment_at_refresh": "position"}),
]
# statistics accumulated every 3rd step only (steps 1, 4, 7, ...), every variant
# (a root, KrAD's square schedule, an eigenbasis from L / bc + eps I by default; the others slow)
CASES += [
    pytest.param(
        v,
        10,
        {"statistics_compute_steps": 3},
        id=f"{v}-statistics_every_3",
        marks=() if v in ("shampoo", "kradagrad", "eshampoo") else pytest.mark.slow,
    )
    for v in TORCH
    if v != "nadamw"
]
# factor statistics from TF32- or bf16-rounded inputs (emulated on CPU: the same rounding in both cores)
CASES += [
    pytest.param("shampoo", 10, {"statistics_precision": "bfloat16"}, id="shampoo-statistics_bfloat16"),
    pytest.param("soap", 10, {"statistics_precision": "tf32"}, id="soap-statistics_tf32"),
    pytest.param(
        "shampoo2",
        10,
        {"online": True, "statistics_precision": "tf32"},
        id="shampoo2-online-statistics_tf32",
        marks=pytest.mark.slow,
    ),
]
# the other matrix functions and statistics, at frequency 10 (slow: compiling is most of a case's time)
CASES += [
    pytest.param(variant, 10, extra, marks=pytest.mark.slow)
    for variant, extra in [
        ("shampoo", {"root_method": "newton"}),
        ("shampoo2", {"online": True}),
        ("kradagrad", {"grafting": "adam", "betas": (0.9, 0.999)}),
        ("eshampoo", {"basis_method": "qr", "max_qr_iterations": 5}),
    ]
]


@pytest.mark.integration
@pytest.mark.parametrize("variant, frequency, extra", CASES)
def test_fp64_parity_over_100_steps(variant, frequency, extra):
    params, grads = problem(100)
    options = {**options_for(variant, frequency, "float64"), **extra}
    reference = torch_run(variant, params, grads, torch.float64, options)
    with enable_x64():
        ours, counters = jax_run(variant, params, grads, jnp.float64, options)
    difference = max_relative_difference(ours, reference)
    print(f"{variant} frequency {frequency} {extra}: max relative difference {difference:.2e}, {counters}")
    assert difference <= 1e-10
    if variant != "nadamw":  # the preconditioner really acted: the run is far from NAdamW's
        assert counters["refreshes"] > 0 and counters["failures"] == 0
        plain = torch_run("nadamw", params, grads, torch.float64, {})
        assert max_relative_difference(reference, plain) > 1e-3


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
@pytest.mark.integration
@pytest.mark.parametrize("variant, frequency, extra", CASES)
def test_fp32_parity_over_10_steps(variant, frequency, extra):
    params, grads = problem(10)
    options = {**options_for(variant, frequency, "float32"), **extra}
    reference = torch_run(variant, params, grads, torch.float32, options)
    ours, _ = jax_run(variant, params, grads, jnp.float32, options)
    assert max_relative_difference(ours, reference) <= 1e-5
