"""``statistics_precision`` (precond.config): the factor statistics' products with TF32 or bfloat16 inputs, in both
cores. The rounding against hand-computed values, the cores against each other bit for bit, the emulated products
against fp64 products of the rounded inputs, the error against the closed-form bound, and the tensor-core path
against the emulation where a CUDA device is present."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import precond
from precond import tensor_ops
from precond_jax import tensor_ops as jax_ops

PRECISIONS = ("tf32", "bfloat16")
UNIT = {"tf32": 2.0**-11, "bfloat16": 2.0**-8}  # the largest relative rounding error of one input


def both(x: np.ndarray, precision: str) -> tuple[np.ndarray, np.ndarray]:
    t = tensor_ops.round_to(torch.tensor(x, dtype=torch.float32), precision).numpy()
    j = np.asarray(jax_ops.round_to(jnp.asarray(x, dtype=jnp.float32), precision))
    return t, j


@pytest.mark.parametrize(
    "precision, x, rounded",
    [
        # TF32 keeps 10 mantissa bits: 1 + 2^-11 is a tie, rounded away from zero; below it down, above it up
        ("tf32", 1 + 2.0**-11, 1 + 2.0**-10),
        ("tf32", -(1 + 2.0**-11), -(1 + 2.0**-10)),
        ("tf32", 1 + 2.0**-12, 1.0),
        ("tf32", 1 + 3 * 2.0**-12, 1 + 2.0**-10),
        ("tf32", 3 + 2.0**-10, 3 + 2.0**-9),  # 3 = 1.5 x 2: the last unit there is 2^-9, 2^-10 a tie: away
        # bfloat16 keeps 7 bits, ties to even: 1 + 2^-8 goes down to 1, 1 + 3 x 2^-8 up to 1 + 2^-6
        ("bfloat16", 1 + 2.0**-8, 1.0),
        ("bfloat16", 1 + 3 * 2.0**-8, 1 + 2.0**-6),
        ("bfloat16", -(1 + 3 * 2.0**-8), -(1 + 2.0**-6)),
        ("bfloat16", 1 + 2.0**-9, 1.0),
    ],
)
def test_rounding_by_hand(precision, x, rounded):
    t, j = both(np.array([x]), precision)
    assert t[0] == rounded and j[0] == rounded


@pytest.mark.parametrize("precision", PRECISIONS)
def test_nan_and_inf_survive_the_rounding(precision):
    """NaNs whose payload the TF32 rounding would carry into the exponent (0x7F800001: to inf) or past the sign
    (0x7FFFFFFF, 0xFFFFFFFF: to 0) stay NaN; infinities stay infinite."""
    bits = np.array([0x7F800001, 0x7FC00000, 0x7FFFFFFF, 0xFFFFFFFF, 0x7F800000, 0xFF800000], dtype=np.uint32)
    t, j = both(bits.view(np.float32), precision)
    for r in (t, j):
        assert np.isnan(r[:4]).all() and list(r[4:]) == [np.inf, -np.inf]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_cores_round_alike_and_within_the_unit(precision):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(4096) * np.exp(rng.uniform(-20, 20, 4096))).astype(np.float32)
    t, j = both(x, precision)
    np.testing.assert_array_equal(t, j)
    assert np.all(np.abs(t - x) <= UNIT[precision] * np.abs(x))
    assert np.any(t != x)
    assert np.array_equal(tensor_ops.round_to(torch.tensor(x), "highest").numpy(), x)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("core", ["torch", "jax"])
def test_emulated_products_are_exact_products_of_the_rounded_inputs(precision, core):
    """Products of two rounded inputs are exact in fp32, so the emulation differs from fp64 arithmetic on the
    rounded inputs by fp32 summation only; from the unrounded product by at most (2u + u^2) sum |a||b|."""
    rng = np.random.default_rng(1)
    g = rng.standard_normal((2, 24, 40)).astype(np.float32)
    if core == "torch":
        s = tensor_ops.statistics_gram(torch.tensor(g), 0, None, precision).numpy()
        r = tensor_ops.round_to(torch.tensor(g), precision).numpy().astype(np.float64)
    else:
        s = np.asarray(jax_ops.statistics_gram(jnp.asarray(g), 0, None, precision))
        r = np.asarray(jax_ops.round_to(jnp.asarray(g), precision)).astype(np.float64)
    magnitude = np.abs(g.astype(np.float64)) @ np.abs(g.astype(np.float64)).transpose(0, 2, 1)
    assert np.all(np.abs(s - r @ r.transpose(0, 2, 1)) <= 40 * 2.0**-24 * magnitude)
    exact = g.astype(np.float64) @ g.astype(np.float64).transpose(0, 2, 1)
    u = UNIT[precision]
    assert np.all(np.abs(s - exact) <= (2 * u + u * u + 40 * 2.0**-24) * magnitude)
    assert np.abs(s - exact).max() > u / 16 * magnitude.max()  # the rounding is there, beyond fp32 summation


def test_highest_is_the_plain_product():
    g = torch.randn(3, 16, 20, generator=torch.Generator().manual_seed(2))
    assert torch.equal(tensor_ops.statistics_gram(g, 1, None, "highest"), tensor_ops.gram(g, 1))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_shampoo_with_rounded_statistics_stays_near_the_full_precision_run(precision):
    """Whole optimizer: the factors differ from full precision's by the rounding, not more."""
    torch.manual_seed(3)
    w = torch.randn(16, 12)
    runs = {}
    for p in ("highest", precision):
        param = torch.nn.Parameter(w.clone())
        opt = precond.Shampoo([param], lr=1e-2, precondition_frequency=5, statistics_precision=p)
        gen = torch.Generator().manual_seed(4)
        for _ in range(10):
            param.grad = torch.randn(16, 12, generator=gen)
            opt.step()
        runs[p] = (param.detach().clone(), opt._groups[0].state["factors"][0].clone())
    (p_full, f_full), (p_low, f_low) = runs["highest"], runs[precision]
    relative = ((f_low - f_full).norm() / f_full.norm()).item()
    assert 0 < relative <= 4 * UNIT[precision]
    assert 0 < ((p_low - p_full).norm() / (p_full - w).norm()).item() < 0.05


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the tensor-core path)")
@pytest.mark.parametrize("precision", PRECISIONS)
def test_tensor_cores_match_the_emulation_on_cuda(precision):
    g = torch.randn(4, 256, 512, generator=torch.Generator().manual_seed(5))
    hardware = tensor_ops.statistics_gram(g.cuda(), 0, None, precision).cpu().double()
    emulated = tensor_ops.statistics_gram(g, 0, None, precision).double()
    magnitude = g.double().abs() @ g.double().abs().transpose(-1, -2)
    # summation order, and TF32 inputs possibly truncated rather than rounded (2^-10 per input)
    slack = (4 * UNIT[precision] if precision == "tf32" else 0) + 512 * 2.0**-24
    assert torch.all((hardware - emulated).abs() <= slack * magnitude)


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="needs a JAX GPU backend (XLA's dot algorithms)")
@pytest.mark.parametrize("precision", PRECISIONS)
def test_xla_dot_algorithms_match_the_emulation_on_gpu(precision):
    g = np.random.default_rng(6).standard_normal((4, 256, 512)).astype(np.float32)
    hardware = np.asarray(jax_ops.statistics_gram(jnp.asarray(g), 0, None, precision), dtype=np.float64)
    emulated = tensor_ops.statistics_gram(torch.tensor(g), 0, None, precision).double().numpy()
    magnitude = np.abs(g.astype(np.float64)) @ np.abs(g.astype(np.float64)).transpose(0, 2, 1)
    slack = (4 * UNIT[precision] if precision == "tf32" else 0) + 512 * 2.0**-24
    assert np.all(np.abs(hardware - emulated) <= slack * magnitude)
