"""benchmarks/optimizer_share.py's FLOP model of Shampoo's per-step work, per block, against hand-computed values
and against what torch's FLOP counter sees the optimizer do."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import precond
from benchmarks.optimizer_share import shampoo_blocks
from precond.config import KronConfig

SHAMPOO = KronConfig(variant="shampoo", max_preconditioner_dim=1024, precondition_frequency=100)


def test_block_flops_by_hand():
    # a (64, 288) block: statistics 2*64*N + 2*288*N with N = 64*288, the same again to apply, roots (eigh 9 d^3
    # and Q diag Q^T 2 d^3) / 100
    (b,) = shampoo_blocks([("w", (64, 288))], SHAMPOO)
    n = 64 * 288
    assert b.statistics == b.application == 2 * 64 * n + 2 * 288 * n
    assert b.roots == pytest.approx(11 * (64**3 + 288**3) / 100)
    # a (3000, 200) matrix at max_dim 1024: blocks of 1024, 1024 and 952 rows; a bias is not preconditioned
    blocks = shampoo_blocks([("m", (3000, 200)), ("bias", (200,))], SHAMPOO)
    assert [x.shape for x in blocks] == [(1024, 200), (1024, 200), (952, 200)]
    # a (32, 16, 3, 3) conv weight merges to (32, 144)
    assert shampoo_blocks([("conv", (32, 16, 3, 3))], SHAMPOO)[0].shape == (32, 144)


def test_model_matches_the_flops_torch_counts_in_a_shampoo_step():
    """A step between refreshes: the counter sees the statistics and the roots' application (matmuls); grafting
    and moments are elementwise, uncounted, as the model leaves them out."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 10))
    opt = precond.Shampoo(model.parameters(), lr=1e-3, precondition_frequency=100, start_preconditioning_step=1)
    x = torch.randn(4, 3, 8, 8)
    for _ in range(2):
        model.zero_grad()
        model(x).square().mean().backward()
        with FlopCounterMode(display=False) as counter:
            opt.step()
    shapes = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
    blocks = shampoo_blocks(shapes, SHAMPOO)
    assert [b.shape for b in blocks] == [(8, 27), (10, 288)]
    assert counter.get_total_flops() == sum(b.statistics + b.application for b in blocks)
