"""Blocking rules and Kronecker mode products against explicit Kronecker matrices."""

import torch

from precond import blocking
from precond.tensor_ops import apply_all, block_norms, gram, mode_product


def test_merge_small_dims():
    assert blocking.merge_small_dims((64, 32, 3, 3), 1024) == (64, 288)
    assert blocking.merge_small_dims((3, 3, 32, 64), 1024) == (288, 64)
    assert blocking.merge_small_dims((1, 30, 1, 20), 1024) == (30, 20)  # unit dims dropped, a matrix stays a matrix
    assert blocking.merge_small_dims((4, 5, 6), 1024) == (20, 6)
    assert blocking.merge_small_dims((2000, 3), 1024) == (2000, 3)


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
