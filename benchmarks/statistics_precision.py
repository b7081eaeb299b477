"""What ``statistics_precision`` buys and costs: the factor statistics' product G_(0) G_(0)^T of a (B, d, m) stack
at "highest", "tf32" and "bfloat16", timed interleaved per round on one device, with each result's largest error
against fp64 relative to sum |g||g| (the closed-form bound is 2u + u^2 plus fp32 summation: u = 2^-11 for tf32,
2^-8 for bfloat16). On CUDA the tensor cores compute the reduced precisions; on CPU they are emulated (inputs
rounded, then multiplied at fp32), so no faster: the CPU rows show the numerics, the CUDA rows the speed.

    python -m benchmarks.statistics_precision [--device cuda] [--shapes 8x1024x1024 4x2048x512] [--rounds 7]
"""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from precond.config import STATISTICS_PRECISIONS  # noqa: E402
from precond.tensor_ops import statistics_gram  # noqa: E402


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(shape: tuple[int, int, int], device: str, rounds: int) -> dict[str, tuple[float, float]]:
    """Per precision: median seconds of one product, and the largest error relative to sum |g||g|."""
    g = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    exact = g.double() @ g.double().transpose(-1, -2)
    magnitude = g.double().abs() @ g.double().abs().transpose(-1, -2)
    g = g.to(device)
    times = {p: [] for p in STATISTICS_PRECISIONS}
    errors = {
        p: float((statistics_gram(g, 0, None, p).cpu().double() - exact).abs().div(magnitude).max()) for p in times
    }
    for _ in range(rounds):
        for p in times:  # interleaved, so every precision sees the same load
            _sync(device)
            start = time.perf_counter()
            statistics_gram(g, 0, None, p)
            _sync(device)
            times[p].append(time.perf_counter() - start)
    return {p: (statistics.median(t), errors[p]) for p, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--shapes", nargs="+", default=["8x1024x1024", "4x2048x512", "16x512x512"])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device visible; use --device cpu")
    if args.rounds < 1:
        parser.error(f"--rounds={args.rounds} must be at least 1")
    print(f"device {args.device}, {args.rounds} interleaved rounds, medians; error: max |S - S_fp64| / (|G||G|^T)")
    print("| B x d x m | precision | ms | / highest | error |")
    print("|---|---|---|---|---|")
    for text in args.shapes:
        try:
            shape = tuple(int(x) for x in text.split("x"))
            assert len(shape) == 3 and min(shape) > 0
        except (ValueError, AssertionError):
            parser.error(f"--shapes {text}: write a stack as BxDxM, e.g. 8x1024x1024")
        result = measure(shape, args.device, args.rounds)
        base = result["highest"][0]
        for p, (seconds, error) in result.items():
            print(f"| {text} | {p} | {seconds * 1e3:.2f} | {seconds / base:.2f} | {error:.1e} |")


if __name__ == "__main__":
    main()
