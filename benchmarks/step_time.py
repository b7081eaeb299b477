"""Amortised step time of every Kronecker variant relative to torch.optim.AdamW, and SOAP vs HeavyBall's SOAP;
with JAX installed, the same for precond_jax's jitted steps relative to optax.adamw, and JAX / torch.

Three model shapes (an MLP, a transformer block, a conv net), precondition_frequency 100 and
max_preconditioner_dim 1024. Each optimizer runs ``--steps`` timed steps (default 100: one refresh) after
three warm-up steps, on real forward/backward passes over fixed random data. Reported per model: the optimizer
step's time and the whole training step's time, each divided by AdamW's. One torch thread by default, for
stable numbers on a shared 2-core machine. HeavyBall runs eagerly (its torch.compile costs minutes per model
here and brings no CPU speed-up: docs/architecture.md, "Environment"); ``--heavyball_compile`` turns compilation
on. The JAX column (``benchmarks.step_time_jax``: the same models in JAX, XLA on one thread with --threads 1)
times each optimizer right after its torch twin, so the JAX / torch ratios are measured side by side;
``--no_jax`` skips it.

Meta's Distributed Shampoo (``benchmarks.meta_shampoo``: from the path or the shipped archive) runs its Shampoo
and EShampoo configurations right after kronbench's twins, fp32, vectors by Adam, with the twins' floor, and
kronbench / Meta is printed per model; ``--no_meta`` skips them.

Beside each Kronecker variant with a model (``precond.flops``): its GEMM floor, the matrix products of its
statistics, applications and amortised refreshes counted from the block shapes at the rate of a 1024^3 fp32 matmul
(``benchmarks.gemm_floor``) timed in the same run (the best of its timings before each optimizer and after the
last), and measured / floor.

    python -m benchmarks.step_time [--steps 100] [--models mlp transformer convnet] [--threads 1] [--no_jax]
        [--no_meta]
"""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

import precond  # noqa: E402
from benchmarks import gemm_floor, meta_shampoo  # noqa: E402
from precond import flops  # noqa: E402
from precond.config import KronConfig  # noqa: E402
from precond.registry import SPECS  # noqa: E402

KRON = {spec.optimizer: getattr(precond, spec.optimizer) for spec in SPECS.values()}

OPTIONS = {"precondition_frequency": 100, "max_preconditioner_dim": 1024}
WARMUP = 3


def mlp():
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10)
    )
    return model, torch.randn(128, 784), torch.randint(0, 10, (128,))


class TransformerBlock(nn.Module):
    def __init__(self, d=256, heads=4, ff=1024, vocab=512):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.block = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True)
        self.head = nn.Linear(d, vocab)

    def forward(self, x):
        return self.head(self.block(self.embed(x))).flatten(0, 1)


def transformer():
    x = torch.randint(0, 512, (16, 64))
    return TransformerBlock(), x, torch.randint(0, 512, (16 * 64,))


def convnet():
    def stage(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

    model = nn.Sequential(*stage(3, 32), *stage(32, 64), *stage(64, 128), nn.Flatten(), nn.Linear(128 * 16, 10))
    return model, torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))


MODELS = {"mlp": mlp, "transformer": transformer, "convnet": convnet}


def make_optimizer(name, params, heavyball_compile):
    common = {"lr": 1e-3, "weight_decay": 0.0}
    if name == "AdamW":
        return torch.optim.AdamW(params, **common)
    if name in meta_shampoo.TWINS.values():
        frequency, max_dim = OPTIONS["precondition_frequency"], OPTIONS["max_preconditioner_dim"]
        return meta_shampoo.optimizer(meta_shampoo.load(), name, params, common["lr"], frequency, max_dim)
    if name == "HeavyBall SOAP":
        import heavyball

        if not heavyball_compile:
            heavyball.utils.compile_mode = None
        return heavyball.SOAP(params, precondition_frequency=100, max_precond_dim=1024, **common)
    return KRON[name](params, **OPTIONS, **common)


def time_steps(model_fn, name, steps, heavyball_compile):
    """(seconds per optimizer step, seconds per training step), amortised over ``steps`` timed steps."""
    torch.manual_seed(0)
    model, x, y = model_fn()
    opt = make_optimizer(name, model.parameters(), heavyball_compile)
    loss_fn = nn.CrossEntropyLoss()
    opt_time = total = 0.0
    for i in range(steps + WARMUP):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        mid = time.perf_counter()
        opt.step()
        end = time.perf_counter()
        if i >= WARMUP:  # warm-up: allocation and first-call costs
            opt_time += end - mid
            total += end - start
    return opt_time / steps, total / steps


def floor_flops(model_fn, name: str, steps: int) -> float | None:
    """Matrix-product FLOPs per timed step of Kronecker optimizer ``name`` on the model (None: no floor)."""
    if name not in KRON:
        return None
    cfg = KronConfig.build(name, KRON[name].PRESET, OPTIONS)
    shapes = [p.shape for p in model_fn()[0].parameters()]
    blocks = flops.preconditioned_blocks(shapes, OPTIONS["max_preconditioner_dim"])
    return flops.step_flops(cfg, blocks, range(WARMUP + 1, WARMUP + 1 + steps))


def jax_available() -> bool:
    try:
        import precond_jax  # noqa: F401
    except ImportError:
        return False
    return True


def heavyball_available() -> bool:
    try:
        import heavyball  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--optimizers", nargs="+", default=list(KRON))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--heavyball_compile", action="store_true")
    parser.add_argument("--no_jax", action="store_true", help="skip the JAX column")
    parser.add_argument("--no_meta", action="store_true", help="skip Meta's Distributed Shampoo rows")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = not args.no_meta and meta_shampoo.load() is not None
    twins = {k: v for k, v in meta_shampoo.TWINS.items() if meta and k in args.optimizers}
    names = ["AdamW"] + [n for o in args.optimizers for n in (o, twins.get(o)) if n]  # each Meta twin after its own
    names += ["HeavyBall SOAP"] if heavyball_available() else []
    use_jax = not args.no_jax and jax_available()
    if use_jax:
        from benchmarks import step_time_jax

        if args.threads == 1:
            step_time_jax.single_threaded()
    print(
        f"{args.steps} timed steps, precondition_frequency 100, max_preconditioner_dim 1024, "
        f"{torch.get_num_threads()} torch thread(s); ratios to AdamW (optimizer step | whole training step)"
        + ("; JAX: jitted steps, ratios to optax.adamw, then JAX / torch (optimizer step)" if use_jax else "")
    )
    if "HeavyBall SOAP" not in names:
        print("HeavyBall is not installed (pip install heavyball==3.2.1): its column is skipped")
    if not meta and not args.no_meta:
        print(f"Meta's Distributed Shampoo is neither importable nor at {meta_shampoo.ARCHIVE}: its rows are skipped")
    if not use_jax and not args.no_jax:
        print("JAX is not installed (pip install -r requirements.txt): its column is skipped")
    for model_name in args.models:
        times, jax_times = {}, {}
        rate = 0.0
        for name in names:  # torch and JAX side by side, so that the machine's load drifts into both alike
            rate = max(rate, gemm_floor.matmul_rate())  # the best rate seen between the optimizers' runs
            times[name] = time_steps(MODELS[model_name], name, args.steps, args.heavyball_compile)
            if use_jax and (name == "AdamW" or name in step_time_jax.VARIANTS):
                jax_times[name] = step_time_jax.time_steps(model_name, name, args.steps)
        rate = max(rate, gemm_floor.matmul_rate())
        floors = {name: floor_flops(MODELS[model_name], name, args.steps) for name in names}
        floors |= {twin: floors[name] for name, twin in twins.items()}  # the same products, so the same floor
        report(model_name, names, times, jax_times, {n: f / rate for n, f in floors.items() if f is not None}, rate)


def report(
    model_name: str, names: list[str], times: dict, jax_times: dict, floors: dict | None = None, rate: float = 0.0
) -> None:
    """``floors``: seconds per step of each Kronecker variant's GEMM floor at ``rate`` FLOP/s."""
    floors = floors or {}
    adam_opt, adam_total = times["AdamW"]
    line = f"\n{model_name}: AdamW {adam_opt * 1e3:.2f} ms optimizer step, {adam_total * 1e3:.1f} ms training step"
    if jax_times:
        jax_opt, jax_total = jax_times["AdamW"]
        line += f"; optax.adamw {jax_opt * 1e3:.2f} ms, {jax_total * 1e3:.1f} ms"
    if floors:
        line += f"; fp32 matmul 1024^3 at {rate / 1e9:.1f} GFLOP/s (the GEMM floor's rate)"
    print(line)
    for name in names[1:]:
        opt_t, total_t = times[name]
        row = f"  {name:15s} {opt_t / adam_opt:8.1f}x | {total_t / adam_total:5.2f}x   ({opt_t * 1e3:8.2f} ms)"
        if name in floors:
            row += f"   floor {floors[name] * 1e3:8.2f} ms, measured/floor {opt_t / floors[name]:5.2f}x"
        if name in jax_times:
            j_opt, j_total = jax_times[name]
            row += (
                f"   JAX {j_opt / jax_opt:8.1f}x | {j_total / jax_total:5.2f}x   ({j_opt * 1e3:8.2f} ms)"
                f"   JAX/torch {j_opt / opt_t:5.2f}x"
            )
        print(row)
    if jax_times:
        print(f"  {'AdamW':15s} JAX/torch {jax_times['AdamW'][0] / adam_opt:5.2f}x (optax.adamw / torch.optim.AdamW)")
    for name, twin in meta_shampoo.TWINS.items():
        if name in times and twin in times:
            print(
                f"  {name} / {twin}: {times[name][0] / times[twin][0]:.2f}x optimizer step, "
                f"{times[name][1] / times[twin][1]:.2f}x training step"
            )
    if "HeavyBall SOAP" in times and "SOAP" in times:
        print(
            f"  SOAP / HeavyBall SOAP: {times['SOAP'][0] / times['HeavyBall SOAP'][0]:.2f}x optimizer step, "
            f"{times['SOAP'][1] / times['HeavyBall SOAP'][1]:.2f}x training step"
        )


if __name__ == "__main__":
    main()
