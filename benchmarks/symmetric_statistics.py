"""Does exploiting the symmetry of the factor statistics pay on this CPU? The EMA update L <- b2 L + (1 - b2) G G^T
of one (B, d, d) stack, timed interleaved per round against the engine's own (a full bmm, then scale and add):

- fused: one baddbmm_, the EMA folded into the GEMM's beta and alpha (full product, one pass over L fewer);
- triangle2 / triangle4: the lower triangle of 2 x 2 or 4 x 4 blocks by baddbmm_ into views of L (3/4 and 10/16
  of the FLOPs), the strict upper blocks then copied from their mirror images;
- triangle4_unfused: the same 10 products into a fresh buffer by bmm, mirrored, then the engine's EMA;
- syrk: BLAS ssyrk (scipy's, C = alpha A A^T + beta C on one triangle: half the FLOPs) per block, then mirrored.

Each candidate's result is checked against the engine's first (fp32 rounding). Printed per shape: median and
interquartile range over rounds of candidate / engine time, and the engine's time. One torch thread.

``--models``: whole optimizer steps instead (precond's, after a refresh at step 1, none after), on
benchmarks.step_time's models, one of the engine's paths on and off in alternate steps of two optimizers with the
same gradients: median [IQR] of on / off. ``--ab triangle`` (the default) switches the triangle products
(``precond.tensor_ops.TRIANGLE_MIN_DIM``; off, those grams take the engine's other path, one GEMM with the EMA
folded in), ``--ab fold`` the EMA folded into the GEMM (``tensor_ops.folds_ema``; off, product then EMA).

    python -m benchmarks.symmetric_statistics [--rounds 7] [--shapes 1x1024x1024 1x512x512 ...]
    python -m benchmarks.symmetric_statistics --models mlp transformer convnet [--optimizer Shampoo] [--rounds 12]
        [--ab triangle|fold]
"""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

B2 = 0.999
# (blocks, d, m): the Gram matrix of (d, m) unfoldings. Block 1024 (a 1024 x 1024 block, and a 2048 x 512 MLP
# weight's (1024, 512) blocks), the transformer layer's 512 x 512, smaller suite factors and a conv's (c_out, c_in k k).
SHAPES = ["1x1024x1024", "2x1024x512", "2x512x1024", "4x512x512", "4x256x256", "8x128x128", "1x128x1152"]


def engine(f, a):
    f.mul_(B2).add_(a @ a.transpose(-1, -2), alpha=1 - B2)


def fused(f, a):
    f.baddbmm_(a, a.transpose(-1, -2), beta=B2, alpha=1 - B2)


def _triangle(f, a, parts):
    d = a.shape[1]
    cuts = [d * i // parts for i in range(parts + 1)]
    rows = [slice(cuts[i], cuts[i + 1]) for i in range(parts)]
    for i, ri in enumerate(rows):
        for rj in rows[: i + 1]:
            f[:, ri, rj].baddbmm_(a[:, ri], a[:, rj].transpose(-1, -2), beta=B2, alpha=1 - B2)
    for i, ri in enumerate(rows):
        for rj in rows[i + 1 :]:
            f[:, ri, rj] = f[:, rj, ri].transpose(-1, -2)


def triangle4_unfused(f, a):
    """The triangle into a fresh buffer, then the engine's EMA: the path that keeps its rounding of the EMA."""
    g = torch.empty_like(f)
    d = a.shape[1]
    cuts = [d * i // 4 for i in range(5)]
    rows = [slice(cuts[i], cuts[i + 1]) for i in range(4)]
    for i, ri in enumerate(rows):
        for rj in rows[: i + 1]:
            torch.bmm(a[:, ri], a[:, rj].transpose(-1, -2), out=g[:, ri, rj])
    for i, ri in enumerate(rows):
        for rj in rows[i + 1 :]:
            g[:, ri, rj] = g[:, rj, ri].transpose(-1, -2)
    f.mul_(B2).add_(g, alpha=1 - B2)


def triangle2(f, a):
    _triangle(f, a, 2)


def triangle4(f, a):
    _triangle(f, a, 4)


def syrk(f, a):
    from scipy.linalg.blas import ssyrk

    for fb, ab in zip(f.numpy(), a.numpy(), strict=True):
        # in Fortran order fb.T is L and ab.T is (m, d): trans=1 gives ab ab^T into fb's lower triangle, in place
        ssyrk(1 - B2, ab.T, beta=B2, c=fb.T, trans=1, lower=0, overwrite_c=1)
    f.copy_(torch.tril(f) + torch.tril(f, -1).transpose(-1, -2))


CANDIDATES = {
    "fused": fused,
    "triangle2": triangle2,
    "triangle4": triangle4,
    "triangle4_unfused": triangle4_unfused,
    "syrk": syrk,
}


def timed(fn, f, a) -> float:
    start = time.perf_counter()
    fn(f, a)
    return time.perf_counter() - start


def measure(shape: str, rounds: int) -> dict:
    b, d, m = (int(x) for x in shape.split("x"))
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(b, d, m, generator=gen)
    start = torch.randn(b, d, m, generator=gen)
    start = start @ start.transpose(-1, -2) / m
    reference = start.clone()
    engine(reference, a)
    for name, fn in CANDIDATES.items():
        f = start.clone()
        fn(f, a)
        torch.testing.assert_close(f, reference, rtol=1e-4, atol=1e-4, msg=lambda s, n=name: f"{n}: {s}")
    ratios = {name: [] for name in CANDIDATES}
    base_times = []
    f = start.clone()
    for _ in range(rounds + 1):  # the first round warms up
        base = timed(engine, f, a)
        for name, fn in CANDIDATES.items():
            ratios[name].append(timed(fn, f, a) / base)
        base_times.append(base)
    return {"engine": statistics.median(base_times[1:]), **{n: r[1:] for n, r in ratios.items()}}


def _switch(path: str):
    """(name, on value, off value) of the ``precond.tensor_ops`` attribute that turns the engine's ``path``
    ("triangle" or "fold") on or off."""
    from precond import tensor_ops

    name = {"triangle": "TRIANGLE_MIN_DIM", "fold": "folds_ema"}[path]
    off = {"triangle": 2**62, "fold": lambda *args: False}[path]
    return name, getattr(tensor_ops, name), off


def measure_steps(model_name: str, optimizer: str, rounds: int, path: str = "triangle") -> tuple[list[float], float]:
    """(``path`` on / off optimizer-step time per round, the last 'off' step's seconds)."""
    import precond
    from benchmarks.step_time import MODELS
    from precond import tensor_ops

    model = MODELS[model_name]()[0]
    grads = [torch.randn_like(p) for p in model.parameters()]
    runs = {}
    for on in (True, False):
        params = [torch.nn.Parameter(p.detach().clone()) for p in model.parameters()]
        opt = getattr(precond, optimizer)(params, precondition_frequency=10**6, start_preconditioning_step=1)
        runs[on] = (params, opt)
    (name, on_value, off_value), ratios, times = _switch(path), [], {}
    try:
        for i in range(rounds + 1):  # the first round refreshes
            for on, (params, opt) in runs.items():
                setattr(tensor_ops, name, on_value if on else off_value)
                for p, g in zip(params, grads, strict=True):
                    p.grad = g
                start = time.perf_counter()
                opt.step()
                times[on] = time.perf_counter() - start
            if i:
                ratios.append(times[True] / times[False])
    finally:
        setattr(tensor_ops, name, on_value)
    return ratios, times[False]


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4)
    return q[0], statistics.median(xs), q[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--shapes", nargs="+", default=SHAPES)
    parser.add_argument("--models", nargs="+", choices=["mlp", "transformer", "convnet"])
    parser.add_argument("--optimizer", default="Shampoo", choices=["Shampoo", "Shampoo2", "EShampoo", "SOAP"])
    parser.add_argument("--ab", default="triangle", choices=["triangle", "fold"], help="the path --models switches")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (quartiles over rounds)")
    torch.set_num_threads(1)
    if args.models:
        what = {"triangle": "triangle statistics", "fold": "EMA folded into the GEMM"}[args.ab]
        print(f"{args.optimizer} optimizer step, {what} on / off, median [IQR] over {args.rounds} rounds")
        for name in args.models:
            ratios, off = measure_steps(name, args.optimizer, args.rounds, args.ab)
            q = quartiles(ratios)
            print(f"  {name:12s} {q[1]:.2f} [{q[0]:.2f}, {q[2]:.2f}]   (off: {off * 1e3:.1f} ms)", flush=True)
        return
    print(f"candidate / engine time of the EMA statistics update, median [IQR] over {args.rounds} rounds, 1 thread")
    for shape in args.shapes:
        result = measure(shape, args.rounds)
        cells = [f"{n} {q[1]:.2f} [{q[0]:.2f}, {q[2]:.2f}]" for n in CANDIDATES for q in [quartiles(result[n])]]
        print(f"  {shape:12s} engine {result['engine'] * 1e3:8.2f} ms   " + "   ".join(cells), flush=True)


if __name__ == "__main__":
    main()
