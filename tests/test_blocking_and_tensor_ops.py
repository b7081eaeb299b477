"""Blocking rules and Kronecker mode products against explicit Kronecker matrices."""

import pytest
import torch

import precond
from precond import blocking
from precond.tensor_ops import apply_all, block_norms, gram, mode_product


def test_merge_small_dims():
    """The leading dim stays; trailing dims merge from the right while the product stays <= max_dim. Two
    expectations changed with the rule (merging from the left was the bug): (3, 3, 32, 64) was (288, 64), and
    (4, 5, 6) was (20, 6)."""
    assert blocking.merge_small_dims((64, 32, 3, 3), 1024) == (64, 288)
    assert blocking.merge_small_dims((3, 3, 32, 64), 1024) == (3, 96, 64)
    assert blocking.merge_small_dims((1, 30, 1, 20), 1024) == (30, 20)  # unit dims dropped, a matrix stays a matrix
    assert blocking.merge_small_dims((4, 5, 6), 1024) == (4, 30)
    assert blocking.merge_small_dims((2000, 3), 1024) == (2000, 3)
    assert blocking.merge_small_dims((512, 256, 3, 3), 1024) == (512, 256, 9)  # c_in*kh*kw > max_dim
    assert blocking.merge_small_dims((7, 1), 1024) == (7,) and blocking.merge_small_dims((1, 1), 1024) == (1,)


def factor_shapes(param_shape, max_dim=1024):
    """The Kronecker factor shapes an optimizer builds for one parameter: [[factor dims per block group]]."""
    opt = precond.Shampoo([torch.nn.Parameter(torch.zeros(param_shape))], max_preconditioner_dim=max_dim)
    return sorted((len(bg.members), tuple(f.shape[1:] for f in bg.state.get("factors", ()))) for bg in opt._groups)


@pytest.mark.integration
@pytest.mark.parametrize(
    "param_shape, max_dim, expected",
    [
        # conv (c_out, c_in, kh, kw) -> (c_out, c_in*kh*kw): an output factor and a receptive-field factor
        ((8, 4, 3, 3), 1024, [(1, ((8, 8), (36, 36)))]),  # the old rule gave (96, 3)
        ((32, 16, 3, 3), 1024, [(1, ((32, 32), (144, 144)))]),  # the old rule gave (512, 9)
        ((16, 3, 5, 5), 64, [(1, ((16, 16), (3, 3), (25, 25)))]),  # c_in*kh*kw = 75 > 64: two trailing groups
        # embedding (vocab, dim): rows split into blocks of max_dim
        ((100, 8), 1024, [(1, ((100, 100), (8, 8)))]),
        ((2500, 16), 1024, [(1, ((452, 452), (16, 16))), (2, ((1024, 1024), (16, 16)))]),
        # attention: a stacked (3, d, d) q/k/v weight keeps q/k/v as a factor while d * d > max_dim;
        # a per-head (h, d_head, d) weight gives (h, d_head * d); a fused (3d, d) in_proj is a plain matrix
        ((3, 64, 64), 1024, [(1, ((3, 3), (64, 64), (64, 64)))]),
        ((3, 16, 16), 1024, [(1, ((3, 3), (256, 256)))]),
        ((4, 16, 64), 1024, [(1, ((4, 4), (1024, 1024)))]),
        ((192, 64), 1024, [(1, ((192, 192), (64, 64)))]),
        # 1-D: the diagonal method, no factors
        ((128,), 1024, [(1, ())]),
        ((1, 128, 1), 1024, [(1, ())]),
    ],
)
def test_factor_shapes(param_shape, max_dim, expected):
    assert factor_shapes(param_shape, max_dim) == expected


def test_plan_blocks_and_one_dimensional_parameters():
    plan = blocking.plan((3000, 200), 1024)
    assert plan.preconditioned and [b.shape for b in plan.blocks] == [(1024, 200), (1024, 200), (952, 200)]
    conv = blocking.plan((64, 32, 3, 3), 1024)
    assert conv.merged_shape == (64, 288) and len(conv.blocks) == 1
    bias = blocking.plan((128,), 1024)
    assert not bias.preconditioned and bias.blocks[0].shape == (128,)
    assert not blocking.plan((30, 20), 1024, precondition=False).preconditioned


def test_mode_products_equal_the_kronecker_matrix():
    gen = torch.Generator().manual_seed(0)
    t = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    mats = [torch.randn(2, d, d, generator=gen, dtype=torch.float64) for d in (3, 4, 5)]
    out = apply_all(t, mats)
    for b in range(2):
        kron = torch.kron(mats[0][b], torch.kron(mats[1][b], mats[2][b]))
        torch.testing.assert_close(out[b].reshape(-1), kron @ t[b].reshape(-1))
    # matrices: T x_0 L x_1 R = L T R^T
    m = torch.randn(1, 3, 4, generator=gen, dtype=torch.float64)
    left, right = mats[0][:1], mats[1][:1]
    torch.testing.assert_close(mode_product(mode_product(m, left, 0), right, 1), left @ m @ right.transpose(-1, -2))


def test_gram_and_block_norms():
    gen = torch.Generator().manual_seed(1)
    t = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    unfolded = t.movedim(2, 1).reshape(2, 4, -1)
    torch.testing.assert_close(gram(t, 1), unfolded @ unfolded.transpose(-1, -2))
    torch.testing.assert_close(block_norms(t).flatten(), t.reshape(2, -1).norm(dim=1))


@pytest.mark.integration
def test_large_grams_take_a_lower_block_triangle_of_the_products():
    """From TRIANGLE_MIN_DIM rows and TRIANGLE_MIN_INNER columns on (CPU), T T^T costs 10 of the 16 block products
    (torch's FLOP counter) and equals the full product to fp64 rounding; an uneven split (d = 515) and an order-3
    tensor's middle dim included. Below either bound it is one full product."""
    from torch.utils.flop_counter import FlopCounterMode

    from precond import tensor_ops

    gen = torch.Generator().manual_seed(2)
    d, m = tensor_ops.TRIANGLE_MIN_DIM, tensor_ops.TRIANGLE_MIN_INNER
    for t, dim in [
        (torch.randn(2, d, m, generator=gen, dtype=torch.float64), 0),
        (torch.randn(1, m // 2, d + 3, 2, generator=gen, dtype=torch.float64), 1),
    ]:
        a = t.movedim(dim + 1, 1).reshape(t.shape[0], t.shape[dim + 1], -1)
        with FlopCounterMode(display=False) as counter:
            ours = gram(t, dim)
        torch.testing.assert_close(ours, a @ a.transpose(-1, -2), rtol=1e-13, atol=1e-13)
        full = 2 * a.shape[0] * a.shape[1] ** 2 * a.shape[2]
        assert counter.get_total_flops() == pytest.approx(full * 10 / 16, rel=0.02)
    for rows, inner in [(d - 1, m), (d, m - 1)]:
        with FlopCounterMode(display=False) as counter:
            gram(torch.randn(2, rows, inner, generator=gen), 0)
        assert counter.get_total_flops() == 2 * 2 * rows**2 * inner


@pytest.mark.parametrize("beta2", [0.999, 1.0])
@pytest.mark.parametrize("precision", ["highest", "bfloat16"])
def test_the_folded_ema_equals_the_product_then_the_ema(beta2, precision):
    """ema_gram folds L <- b2 L + (1 - b2) G G^T into one baddbmm_ (a plain sum when b2 = 1): the same to fp64
    rounding as forming the product first, its inputs rounded as statistics_gram rounds them."""
    from precond import tensor_ops

    gen = torch.Generator().manual_seed(3)
    t = torch.randn(2, 6, 10, 3, generator=gen, dtype=torch.float64)
    stat = torch.randn(2, 10, 10, generator=gen, dtype=torch.float64)
    expected = stat * (beta2 if beta2 < 1 else 1) + (1 - beta2 if beta2 < 1 else 1) * tensor_ops.statistics_gram(
        t, 1, None, precision
    )
    assert tensor_ops.folds_ema(t, 1, beta2, precision)
    tensor_ops.ema_gram(stat, t, 1, beta2, precision)
    torch.testing.assert_close(stat, expected, rtol=1e-13, atol=1e-13)


def test_the_triangle_path_keeps_its_product_and_the_ema_apart():
    from precond import tensor_ops

    d, m = tensor_ops.TRIANGLE_MIN_DIM, tensor_ops.TRIANGLE_MIN_INNER
    assert not tensor_ops.folds_ema(torch.zeros(1, d, m), 0, 0.999, "highest")
    assert tensor_ops.folds_ema(torch.zeros(1, d, m - 1), 0, 0.999, "highest")
    assert not tensor_ops.folds_ema(torch.zeros(1, 2, d, m // 2), 1, 0.999, "highest")  # inner: 2 x m/2 = m
    assert tensor_ops.folds_ema(torch.zeros(1, 2, d, m // 2 - 1), 1, 0.999, "highest")
    assert not tensor_ops.folds_ema(torch.zeros(1, 8, 8), 0, 0.0, "highest")  # beta2 0 keeps the EMA's NaN rule
