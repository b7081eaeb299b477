"""What HeavyBall's torch.compile does to its step time on this CPU: HeavyBall's SOAP (or PSGD-Kron) on the mnist
model, eager (what submissions/thirdparty runs) against compiled (``heavyball.utils.compile_mode``: HeavyBall's
own ``max-autotune-no-cudagraphs``, or torch's ``default``), each in a fresh process so that compiled code is not
shared, in the order given (repeat a mode to interleave). Prints per run the first step (where compilation
happens), the median of the later steps, and the slowest later step (a recompilation shows there).

    python -m benchmarks.heavyball_compile [--optimizer SOAP] [--steps 30] [--modes eager default eager default]
        [--timeout 600]
"""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from compat import prng  # noqa: E402
from workloads.registry import get_workload  # noqa: E402

MODES = {"eager": None, "default": "default", "max-autotune": "max-autotune-no-cudagraphs"}


def one_run(optimizer: str, mode: str, steps: int) -> list[float]:
    """Seconds per step of ``steps`` steps of HeavyBall's ``optimizer`` on the mnist model, in ``mode``."""
    import heavyball

    heavyball.utils.compile_mode = MODES[mode]
    torch.manual_seed(0)
    workload = get_workload("mnist")
    model, _ = workload.init_model_fn(prng.PRNGKey(0))
    opt = getattr(heavyball, optimizer)(
        model.parameters(), lr=1e-3, **({"precondition_frequency": 10} if optimizer == "SOAP" else {})
    )
    x, y = torch.randn(128, 784), torch.randint(0, 10, (128,))
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optimizer", default="SOAP", choices=["SOAP", "PSGDKron"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=["eager", "default", "eager", "default"])
    parser.add_argument("--timeout", type=int, default=600, help="seconds per run; a run past it is reported as such")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one run in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.optimizer, args.one, args.steps)))
        return
    print(f"HeavyBall {args.optimizer}, mnist model, batch 128, {args.steps} steps per run")
    print("mode | first step s | median later step ms | slowest later step ms | wall s")
    for mode in args.modes:
        cmd = [sys.executable, "-m", "benchmarks.heavyball_compile", f"--optimizer={args.optimizer}"]
        start = time.perf_counter()
        try:
            out = subprocess.run(
                [*cmd, f"--steps={args.steps}", f"--one={mode}"], capture_output=True, text=True, timeout=args.timeout
            )
        except subprocess.TimeoutExpired:
            print(f"{mode} | did not finish {args.steps} steps in {args.timeout} s")
            continue
        wall = time.perf_counter() - start
        if out.returncode != 0:
            print(f"{mode} | failed: {out.stderr.strip().splitlines()[-1]}")
            continue
        times = json.loads(out.stdout.strip().splitlines()[-1])
        later = [t * 1e3 for t in times[1:]]
        print(f"{mode} | {times[0]:.2f} | {statistics.median(later):.1f} | {max(later):.1f} | {wall:.0f}")


if __name__ == "__main__":
    main()
