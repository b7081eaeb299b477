"""precond.flops, the FLOP model of a Kronecker step: the per-step products against torch's own FLOP counter on real
optimizer steps, the amortised refreshes and the block-size rule by hand; benchmarks.gemm_floor's matmul rate."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import precond
from benchmarks import gemm_floor
from precond import flops
from precond.config import PRESETS, KronConfig

SHAPES = [(12, 8), (6, 4, 5), (7,)]  # blocks (8, 8), (4, 8), a (6, 4, 5) tensor; a 1-D bias (not preconditioned)
CLASSES = {"shampoo": precond.Shampoo, "shampoo2": precond.Shampoo2, "eshampoo": precond.EShampoo, "soap": precond.SOAP}


def test_blocks_are_the_engines():
    assert flops.preconditioned_blocks(SHAPES, 8) == [(8, 8), (4, 8), (6, 4, 5)]


@pytest.mark.integration
@pytest.mark.parametrize("variant", list(CLASSES))
@pytest.mark.parametrize("every", [1, 2])
def test_products_per_step_match_torchs_flop_counter(variant, every):
    """Steps 2 and 3 after a refresh at step 1 (none after): the mean bmm FLOPs torch counts equal the model's."""
    options = dict(
        precondition_frequency=1000,
        start_preconditioning_step=1,
        max_preconditioner_dim=8,
        statistics_compute_steps=every,
    )
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s)) for s in SHAPES]
    opt = CLASSES[variant](params, **options)
    counted = 0
    for step in (1, 2, 3):
        for p in params:
            p.grad = torch.randn(p.shape)
        with FlopCounterMode(display=False) as counter:
            opt.step()
        counted += counter.get_total_flops() if step > 1 else 0
    cfg = KronConfig.build(variant, PRESETS[variant], options)
    modelled = flops.step_flops(cfg, flops.preconditioned_blocks(SHAPES, 8), range(2, 4))
    assert counted / 2 == modelled > 0


def test_refreshes_are_amortised_over_the_timed_steps():
    """Shampoo on one (8, 6) block, steps 1..10, refreshes at 5 and 10: products 2 (8 + 6) 48 x 2 per step, and
    (9 + 2) (8^3 + 6^3) per refresh."""
    cfg = KronConfig(variant="shampoo", precondition_frequency=5)
    per_step = 2 * (8 + 6) * 48 * 2
    assert flops.step_flops(cfg, [(8, 6)], range(1, 11)) == per_step + 2 * 11 * (8**3 + 6**3) / 10
    assert flops.step_flops(cfg, [(8, 6)], range(6, 10)) == per_step  # no refresh in 6..9
    soap = KronConfig.build("soap", PRESETS["soap"], {"precondition_frequency": 5})  # eigh first, then power + QR
    expected = 9 * (8**3 + 6**3) + (2 + 4 / 3) * (8**3 + 6**3)  # refresh_tau 0: no criterion
    assert flops.step_flops(soap, [(8, 6)], range(1, 11)) == pytest.approx(2 * (8 + 6) * 48 * 3 + expected / 10)
    eshampoo = KronConfig.build("eshampoo", PRESETS["eshampoo"], {"precondition_frequency": 5})  # tau 0.1
    expected = 2 * (9 + 4) * (8**3 + 6**3)  # eigh and the criterion Q^T L Q at each refresh
    assert flops.step_flops(eshampoo, [(8, 6)], range(1, 11)) == 2 * (8 + 6) * 48 * 4 + expected / 10
    assert flops.step_flops(KronConfig(variant="kradagrad"), [(8, 6)], range(1, 3)) is None


def test_matmul_rate_is_positive_and_finite():
    rate = gemm_floor.matmul_rate(size=64, repeats=2)
    assert 0 < rate < float("inf")


def test_steady_flops_by_hand():
    """Shampoo on a (8, 6) block, statistics every 2nd step, refresh every 5: products 2 (8 + 6) 48 (1/2 + 1) per
    step, (9 + 2)(8^3 + 6^3) / 5 amortised; SOAP's refreshes after its first are power + QR, 2 + 4/3 per d^3."""
    cfg = KronConfig(variant="shampoo", precondition_frequency=5, statistics_compute_steps=2)
    assert flops.steady_flops(cfg, [(8, 6)]) == 2 * 14 * 48 * 1.5 + 11 * (8**3 + 6**3) / 5
    soap = KronConfig.build("soap", PRESETS["soap"], {"precondition_frequency": 5})
    assert flops.steady_flops(soap, [(8, 6)]) == pytest.approx(2 * 14 * 48 * 3 + (2 + 4 / 3) * (8**3 + 6**3) / 5)
    assert flops.steady_flops(KronConfig(variant="kradagrad"), [(8, 6)]) is None


def test_block_for_budget_by_hand():
    """A (256, 256) matrix, Shampoo refreshed every 100 steps. At block b (b | 256) there are (256/b)^2 blocks of
    (b, b): products 2 * 2 b * b^2 * 2 = 8 b^3 each, 22 b^3 / 100 for the roots, so the whole costs
    (256/b)^2 * 8.22 b^3 = 538,705.92 b. The rule halves from 256 while that exceeds budget x batch FLOPs."""
    cfg = KronConfig(variant="shampoo", max_preconditioner_dim=256, precondition_frequency=100)
    per_b = 256**2 * 8.22
    assert flops.steady_flops(cfg, flops.preconditioned_blocks([(256, 256)], 64)) == pytest.approx(per_b * 64)
    batch = per_b * 128 / 0.5 * (1 + 1e-9)  # at budget 0.5, block 128 is just within it: the largest that fits
    assert flops.block_for_budget(cfg, [(256, 256)], batch, 0.5) == 128
    assert flops.block_for_budget(cfg, [(256, 256)], batch * 0.999, 0.5) == 64
    assert flops.block_for_budget(cfg, [(256, 256)], batch * 2, 0.5) == 256
    assert flops.block_for_budget(cfg, [(256, 256)], 1.0, 0.5) == flops.MIN_BLOCK  # never below MIN_BLOCK
    small = KronConfig(variant="shampoo", max_preconditioner_dim=16)
    assert flops.block_for_budget(small, [(256, 256)], 1.0, 0.5) == 16  # nothing to halve
    assert flops.block_for_budget(KronConfig(variant="kradagrad"), [(256, 256)], 1.0, 0.5) is None
