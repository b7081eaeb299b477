"""benchmarks.gemm_floor: the per-step products against torch's own FLOP counter on real optimizer steps, and the
amortised refreshes by hand."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import precond
from benchmarks import gemm_floor
from precond.config import PRESETS, KronConfig

SHAPES = [(12, 8), (6, 4, 5), (7,)]  # blocks (8, 8), (4, 8), a (6, 4, 5) tensor; a 1-D bias (not preconditioned)
CLASSES = {"shampoo": precond.Shampoo, "shampoo2": precond.Shampoo2, "eshampoo": precond.EShampoo, "soap": precond.SOAP}


def test_blocks_are_the_engines():
    assert gemm_floor.preconditioned_blocks(SHAPES, 8) == [(8, 8), (4, 8), (6, 4, 5)]


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
    modelled = gemm_floor.step_flops(cfg, gemm_floor.preconditioned_blocks(SHAPES, 8), range(2, 4))
    assert counted / 2 == modelled > 0


def test_refreshes_are_amortised_over_the_timed_steps():
    """Shampoo on one (8, 6) block, steps 1..10, refreshes at 5 and 10: products 2 (8 + 6) 48 x 2 per step, and
    (9 + 2) (8^3 + 6^3) per refresh."""
    cfg = KronConfig(variant="shampoo", precondition_frequency=5)
    per_step = 2 * (8 + 6) * 48 * 2
    assert gemm_floor.step_flops(cfg, [(8, 6)], range(1, 11)) == per_step + 2 * 11 * (8**3 + 6**3) / 10
    assert gemm_floor.step_flops(cfg, [(8, 6)], range(6, 10)) == per_step  # no refresh in 6..9
    soap = KronConfig.build("soap", PRESETS["soap"], {"precondition_frequency": 5})  # eigh first, then power + QR
    expected = 9 * (8**3 + 6**3) + (2 + 4 / 3) * (8**3 + 6**3)  # refresh_tau 0: no criterion
    assert gemm_floor.step_flops(soap, [(8, 6)], range(1, 11)) == pytest.approx(2 * (8 + 6) * 48 * 3 + expected / 10)
    eshampoo = KronConfig.build("eshampoo", PRESETS["eshampoo"], {"precondition_frequency": 5})  # tau 0.1
    expected = 2 * (9 + 4) * (8**3 + 6**3)  # eigh and the criterion Q^T L Q at each refresh
    assert gemm_floor.step_flops(eshampoo, [(8, 6)], range(1, 11)) == 2 * (8 + 6) * 48 * 4 + expected / 10
    assert gemm_floor.step_flops(KronConfig(variant="kradagrad"), [(8, 6)], range(1, 3)) is None


def test_matmul_rate_is_positive_and_finite():
    rate = gemm_floor.matmul_rate(size=64, repeats=2)
    assert 0 < rate < float("inf")
