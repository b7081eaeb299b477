"""The GEMM floor of a Kronecker optimizer step: the FLOPs of its matrix products, counted from the block shapes, at
the rate of a fp32 matmul timed in the same process. A step cannot be faster than its products run at the
machine's matmul rate; measured / floor says how far the rest (elementwise work, copies, eigh's slower kernels,
Python) keeps it from there.

Per block of shape (d_1, ..., d_k) with n = d_1 ... d_k entries, and per step:
- statistics: the k Gram matrices G_(i) G_(i)^T, 2 d_i n each as full GEMMs (symmetry unused), divided by
  statistics_compute_steps;
- applications, 2 d_i n per mode product: Shampoo 1 (G x_i P_i), SOAP 2 (into the eigenbasis and back), EShampoo
  3 (the gradient and the first moment into the basis, the direction back);
- refreshes, amortised over the timed steps, per d x d factor: eigh 9 d^3 (the symmetric QR algorithm with
  eigenvectors, Golub & Van Loan, "Matrix Computations", 8.3), Shampoo's root Q diag Q^T another 2 d^3, the
  basis criterion Q^T L Q 4 d^3 where refresh_tau > 0, SOAP's refreshes after its first one L Q and a QR,
  2 d^3 + 4/3 d^3, in place of eigh. KrAD's inverse updates are not modelled (no floor printed for them).
"""

import time

import torch

from precond import blocking
from precond.config import KronConfig

APPLICATIONS = {"shampoo": 1, "shampoo2": 1, "eshampoo": 3, "soap": 2}  # the variants with a floor
EIGH = 9.0
ROOT = 2.0
CRITERION = 4.0
POWER_QR = 2.0 + 4.0 / 3.0


def preconditioned_blocks(shapes, max_dim: int) -> list[tuple[int, ...]]:
    """The shapes of the preconditioned blocks the engine makes of parameters of these shapes."""
    blocks = []
    for shape in shapes:
        plan = blocking.plan(tuple(shape), max_dim)
        if plan.preconditioned:
            blocks.extend(b.shape for b in plan.blocks)
    return blocks


def refresh_flops(cfg: KronConfig, d: int, first: bool) -> float:
    basis = POWER_QR if cfg.variant == "soap" and not first else EIGH
    root = ROOT if cfg.variant in ("shampoo", "shampoo2") else 0.0
    criterion = CRITERION if cfg.variant in ("eshampoo", "soap") and cfg.refresh_tau > 0 else 0.0
    return (basis + root + criterion) * d**3


def step_flops(cfg: KronConfig, blocks: list[tuple[int, ...]], steps: range) -> float | None:
    """Mean matrix-product FLOPs per step over ``steps`` (1-based step numbers); None for an unmodelled variant."""
    if cfg.variant not in APPLICATIONS:
        return None
    per_step = refreshing = 0.0
    refreshes = [t for t in range(1, steps.stop) if cfg.refresh_due(t)]
    timed = [t for t in refreshes if t in steps]
    for shape in blocks:
        n = 1
        for d in shape:
            n *= d
        products = sum(2.0 * d * n for d in shape)
        per_step += products * (1.0 / cfg.statistics_compute_steps + APPLICATIONS[cfg.variant])
        for t in timed:
            refreshing += sum(refresh_flops(cfg, d, first=t == refreshes[0]) for d in shape)
    return per_step + refreshing / len(steps)


def matmul_rate(size: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of a (size x size) @ (size x size) fp32 matmul: the best of ``repeats`` after one warm-up."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best
