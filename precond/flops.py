"""The FLOP model of a Kronecker optimizer step, counted from the block shapes. One model, read by the GEMM floor of
``make bench`` (``benchmarks.step_time``, at ``benchmarks.gemm_floor``'s matmul rate), the optimizer's share of a
suite step (``benchmarks.optimizer_share``) and the block-size rule (``block_for_budget``). Framework-free.

Per block of shape (d_1, ..., d_k) with n = d_1 ... d_k entries, and per step:
- statistics: the k Gram matrices G_(i) G_(i)^T, 2 d_i n each as full GEMMs (symmetry unused), divided by
  statistics_compute_steps;
- applications, 2 d_i n per mode product: Shampoo 1 (G x_i P_i), SOAP 2 (into the eigenbasis and back), EShampoo
  3 (the gradient and the first moment into the basis, the direction back);
- refreshes, per d x d factor: eigh 9 d^3 (the symmetric QR algorithm with eigenvectors, Golub & Van Loan, "Matrix
  Computations", 8.3), Shampoo's root Q diag Q^T another 2 d^3, the basis criterion Q^T L Q 4 d^3 where
  refresh_tau > 0, SOAP's refreshes after its first one L Q and a QR, 2 d^3 + 4/3 d^3, in place of eigh.
KrAD's inverse updates are not modelled: its functions return None.

Against the forward and backward pass of a batch the ratio is a matter of the batch, not of the layer's size: a
dense (m, n) layer fed T rows costs ~6 m n T FLOPs forward and backward, and Shampoo's statistics and application
4 (m + n) m n, a ratio of 2 (m + n) / (3 T). Smaller blocks cut it in proportion to their width.
"""

import math

from precond import blocking
from precond.config import KronConfig

APPLICATIONS = {"shampoo": 1, "shampoo2": 1, "eshampoo": 3, "soap": 2}  # the modelled variants
EIGH = 9.0
ROOT = 2.0
CRITERION = 4.0
POWER_QR = 2.0 + 4.0 / 3.0
MIN_BLOCK = 32  # block_for_budget halves max_preconditioner_dim no further than this


def preconditioned_blocks(shapes, max_dim: int) -> list[tuple[int, ...]]:
    """The shapes of the preconditioned blocks the engine makes of parameters of these shapes."""
    blocks = []
    for shape in shapes:
        plan = blocking.plan(tuple(shape), max_dim)
        if plan.preconditioned:
            blocks.extend(b.shape for b in plan.blocks)
    return blocks


def mode_products(shape: tuple[int, ...]) -> float:
    """FLOPs of one product per mode of a block: sum over i of 2 d_i n (a statistic, or one application)."""
    n = math.prod(shape)
    return sum(2.0 * d * n for d in shape)


def statistics_flops(cfg: KronConfig, shape: tuple[int, ...]) -> float:
    return mode_products(shape) / cfg.statistics_compute_steps


def application_flops(cfg: KronConfig, shape: tuple[int, ...]) -> float:
    return mode_products(shape) * APPLICATIONS[cfg.variant]


def products_flops(cfg: KronConfig, blocks: list[tuple[int, ...]]) -> float:
    """The statistics and applications of one step, over every block."""
    return sum(statistics_flops(cfg, s) + application_flops(cfg, s) for s in blocks)


def refresh_flops(cfg: KronConfig, d: int, first: bool) -> float:
    """One refresh of a d x d factor (``first``: the variant's first refresh, which SOAP does by eigh)."""
    basis = POWER_QR if cfg.variant == "soap" and not first else EIGH
    root = ROOT if cfg.variant in ("shampoo", "shampoo2") else 0.0
    criterion = CRITERION if cfg.variant in ("eshampoo", "soap") and cfg.refresh_tau > 0 else 0.0
    return (basis + root + criterion) * d**3


def step_flops(cfg: KronConfig, blocks: list[tuple[int, ...]], steps: range) -> float | None:
    """Mean matrix-product FLOPs per step over ``steps`` (1-based step numbers), the refreshes that fall in them
    included; None for an unmodelled variant."""
    if cfg.variant not in APPLICATIONS:
        return None
    per_step = products_flops(cfg, blocks)
    refreshes = [t for t in range(1, steps.stop) if cfg.refresh_due(t)]
    refreshing = sum(
        refresh_flops(cfg, d, first=t == refreshes[0]) for t in refreshes if t in steps for s in blocks for d in s
    )
    return per_step + refreshing / len(steps)


def steady_flops(cfg: KronConfig, blocks: list[tuple[int, ...]]) -> float | None:
    """FLOPs per step once preconditioning runs: products every step, a refresh every precondition_frequency
    steps (not the first), amortised; None for an unmodelled variant."""
    if cfg.variant not in APPLICATIONS:
        return None
    refreshes = sum(refresh_flops(cfg, d, first=False) for s in blocks for d in s)
    return products_flops(cfg, blocks) + refreshes / cfg.precondition_frequency


def block_for_budget(cfg: KronConfig, shapes, batch_flops: float, budget: float) -> int | None:
    """The block-size rule: the largest max_preconditioner_dim, from ``cfg``'s halved down to ``MIN_BLOCK``, at
    which a step's modelled FLOPs (``steady_flops`` of the parameters of ``shapes``) are at most ``budget`` times
    ``batch_flops`` (the forward and backward pass of one training batch); the smallest tried when none is.
    None for an unmodelled variant."""
    if cfg.variant not in APPLICATIONS:
        return None
    dim = cfg.max_preconditioner_dim
    while dim // 2 >= MIN_BLOCK and steady_flops(cfg, preconditioned_blocks(shapes, dim)) > budget * batch_flops:
        dim //= 2
    return dim
