"""The GEMM floor of a Kronecker optimizer step: the FLOPs of its matrix products, counted from the block shapes, at
the rate of a fp32 matmul timed in the same process. A step cannot be faster than its products run at the
machine's matmul rate; measured / floor says how far the rest (elementwise work, copies, eigh's slower kernels,
Python) keeps it from there.

The FLOP model is ``precond.flops`` (its docstring has it); this module adds the matmul rate.
"""

import time

import torch


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
