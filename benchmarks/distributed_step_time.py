"""Per-rank step and refresh time of the Kronecker optimizers sharded over 2 processes (gloo, one thread each),
against the same ranks running the unsharded optimizer, measured in one run.

Both ranks compute the same full-batch gradients on step_time's models (and ``deep_transformer``, its transformer
with 6 layers, whose weight shapes stack over the layers), then time ``opt.step()`` alone, after a
barrier so each rank's time is its own step (including waiting in the all_gather). World size 1 and 2 alternate
``--repeats`` times in the same processes, so both see the same machine load; medians are reported. "step" is a
step without a refresh (after the first refresh), "refresh" a step with one. "modelled" is the part of the cost
model's work (``precond.distributed.group_cost``: a plain step's, a refresh's own) the rank owns: the ratio it
would reach if time followed the model and the all_gather were free: the bound of its chunks.

    python -m benchmarks.distributed_step_time [--models mlp transformer deep_transformer] [--optimizers Shampoo SOAP]
        [--steps 40] [--frequency 10] [--repeats 2]
"""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks.step_time import KRON, TransformerBlock  # noqa: E402
from benchmarks.step_time import MODELS as SHAPES  # noqa: E402
from precond import distributed  # noqa: E402

WORLD = 2


def deep_transformer():
    """step_time's transformer with 6 encoder layers: each weight shape stacked over the layers, as in real models."""
    model = TransformerBlock()
    layer = model.block
    model.block = nn.TransformerEncoder(layer, 6, enable_nested_tensor=False)
    x = torch.randint(0, 512, (16, 64))
    return model, x, torch.randint(0, 512, (16 * 64,))


MODELS = {**SHAPES, "deep_transformer": deep_transformer}


def time_steps(model_name: str, optimizer: str, steps: int, frequency: int, process_group) -> dict:
    """Seconds of each optimizer step, split into steps with and without a refresh; blocks this rank owns."""
    torch.manual_seed(0)
    model, x, y = MODELS[model_name]()
    opt = KRON[optimizer](
        model.parameters(),
        lr=1e-3,
        precondition_frequency=frequency,
        max_preconditioner_dim=1024,
        process_group=process_group,
    )
    loss_fn = nn.CrossEntropyLoss()
    plain, refresh = [], []
    for i in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        if process_group is None:
            dist.barrier()
        start = time.perf_counter()
        opt.step()
        elapsed = time.perf_counter() - start
        if opt.config.refresh_due(i):
            refresh.append(elapsed)
        elif i > frequency + 1:  # preconditioned, past the first refresh's warm-up
            plain.append(elapsed)
    groups, sharding = opt._groups, opt._sharding
    owned = [i for i, g in enumerate(groups) if g.preconditioned and g.state is not None]
    return {"step": plain, "refresh": refresh, "blocks": sum(len(groups[i].members) for i in owned)} | (
        {} if sharding is None else modelled_shares(opt, sharding.owners, sharding.rank)
    )


def modelled_shares(opt, owners: tuple[int, ...], rank: int) -> dict:
    """This rank's part of the cost model's work (``precond.distributed.group_cost``) under the given ownership,
    for a step without a refresh and for a refresh's own work."""
    cubic = opt.variant.cubic_per_step
    shapes = [(bg.shape, len(bg.members), bg.preconditioned) for bg in opt._groups]
    step = [distributed.group_cost(*s, math.inf, cubic) for s in shapes]
    refresh = [distributed.group_cost(*s, 1, cubic) - c for s, c in zip(shapes, step, strict=True)]
    return {
        "step_share": distributed.shares(step, owners, WORLD)[rank],
        "refresh_share": distributed.shares(refresh, owners, WORLD)[rank],
    }


def _worker(rank: int, args: argparse.Namespace, tmp: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=WORLD)
    results = {}
    for model_name in args.models:
        for optimizer in args.optimizers:
            runs = {1: {"step": [], "refresh": []}, WORLD: {"step": [], "refresh": []}}
            for _ in range(args.repeats):  # alternate, so both world sizes see the same load
                for world, group in ((1, False), (WORLD, None)):
                    out = time_steps(model_name, optimizer, args.steps, args.frequency, group)
                    runs[world]["step"] += out["step"]
                    runs[world]["refresh"] += out["refresh"]
                    runs[world].update({k: v for k, v in out.items() if k not in ("step", "refresh")})
            results[f"{model_name} {optimizer}"] = runs
    with open(os.path.join(tmp, f"rank{rank}.json"), "w") as f:
        json.dump(results, f)
    dist.destroy_process_group()


def measure(args: argparse.Namespace) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(args, tmp), nprocs=WORLD, join=True)
        ranks = []
        for r in range(WORLD):
            with open(os.path.join(tmp, f"rank{r}.json")) as f:
                ranks.append(json.load(f))
    return ranks


def table(ranks: list[dict]) -> str:
    def ms(values):
        return statistics.median(values) * 1e3

    lines = [
        "| model, optimizer | rank | blocks (1 / 2 procs) | step ms, 1 proc | step ms, 2 procs | ratio | modelled | "
        "refresh ms, 1 proc | refresh ms, 2 procs | ratio | modelled |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in ranks[0]:
        for rank, results in enumerate(ranks):
            one, two = results[key]["1"], results[key][str(WORLD)]
            step1, step2, ref1, ref2 = ms(one["step"]), ms(two["step"]), ms(one["refresh"]), ms(two["refresh"])
            lines.append(
                f"| {key} | {rank} | {one['blocks']} / {two['blocks']} | {step1:.2f} | {step2:.2f} | "
                f"{step2 / step1:.2f} | {two['step_share']:.2f} | {ref1:.1f} | {ref2:.1f} | {ref2 / ref1:.2f} | "
                f"{two['refresh_share']:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "transformer"], choices=list(MODELS))
    parser.add_argument("--optimizers", nargs="+", default=["Shampoo", "SOAP"], choices=list(KRON))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--frequency", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.steps < 2 * args.frequency + 2:
        parser.error(f"--steps must be at least 2 * --frequency + 2 (= {2 * args.frequency + 2}) to time both kinds")
    print(
        f"{WORLD} gloo processes, 1 torch thread each, {args.steps} steps x {args.repeats} repeats, "
        f"precondition_frequency {args.frequency}, max_preconditioner_dim 1024; medians"
    )
    print(table(measure(args)))


if __name__ == "__main__":
    main()
