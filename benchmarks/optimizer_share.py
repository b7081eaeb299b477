"""Where the CPU over-charges: the optimizer's share of a training step on each suite workload, modelled in FLOPs
and measured.

**FLOP model** (``precond.flops``, per block of Shampoo's blocking with the submission's max_preconditioner_dim and
parameter routing): a block of numel N with dims d_1..d_k (after merging) costs, per step, 2 d_i N FLOPs per dim for
its statistic (G contracted with itself over the other dims: d_i x d_i from d_i x N/d_i) and as much again to apply
that dim's root; every ``precondition_frequency`` steps each factor's root takes an eigendecomposition and the root
Q diag Q^T, ~11 d_i^3 FLOPs, amortised here over the frequency. Blocks left diagonal (biases, norms, embedding
tables on Adam) and the grafting and moments cost O(N) and are left out. Against it: the forward and backward pass
of one training batch, counted by ``torch.utils.flop_counter`` (matmuls, convolutions, attention) on the workload's
own model and batch. **The block-size rule** (``precond.flops.block_for_budget``, ``--budget``): the largest
max_preconditioner_dim, halving from the submission's, at which that model is at most the budget times the
forward and backward pass; its block and FLOP share are printed beside.

**Measured share**: ``--steps`` update steps (after ``--warmup``) of each submission's first search-space point,
Shampoo preconditioning from step 1 (``start_preconditioning_step=1``, so every measured step applies the roots; the
step-1 refresh is timed on its own and amortised over ``precondition_frequency``), the optimizer's ``step()`` timed
inside ``update_params``; share = optimizer time / update_params time. Both submissions run in one process, their
steps interleaved, one workload after the other; the load average is printed, as the machine may be shared. The
last column, (1 - share_nadamw) / (1 - share_shampoo), is the per-step ratio if both spent the same time outside
the optimizer (same model, batch size and data): robust to load, as each share is measured within one step.

    python -m benchmarks.optimizer_share [--workloads suite] [--steps 8] [--warmup 2] [--blocks] [--budget 0.25]
"""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from precond import flops  # noqa: E402
from precond.config import KronConfig  # noqa: E402
from workloads.registry import CPU_SUITE  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class BlockFlops:
    """One preconditioned block: its parameter, shape, and FLOPs per step."""

    name: str
    shape: tuple[int, ...]
    statistics: float
    application: float
    roots: float  # amortised over the refresh period

    @property
    def total(self) -> float:
        return self.statistics + self.application + self.roots


def shampoo_blocks(named_shapes: list[tuple[str, tuple[int, ...]]], cfg: KronConfig) -> list[BlockFlops]:
    """Every preconditioned block of the parameters given (those routed to the Kronecker optimizer), with the FLOP
    model of ``precond.flops`` under ``cfg``."""
    out = []
    for name, shape in named_shapes:
        for b in flops.preconditioned_blocks([shape], cfg.max_preconditioner_dim):
            roots = sum(flops.refresh_flops(cfg, d, first=False) for d in b) / cfg.precondition_frequency
            out.append(BlockFlops(name, b, flops.statistics_flops(cfg, b), flops.application_flops(cfg, b), roots))
    return out


class _Timer:
    """Wraps a method to add up the seconds of its outermost calls while ``active`` (an OptimizerSet's step holds
    its optimizers' steps)."""

    def __init__(self):
        self.depth, self.seconds, self.active = 0, 0.0, True

    def wrap(self, cls, method: str = "step") -> None:
        original = getattr(cls, method)

        def timed(obj, *args, **kwargs):
            if self.depth or not self.active:
                return original(obj, *args, **kwargs)
            self.depth += 1
            start = time.perf_counter()
            try:
                return original(obj, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.depth -= 1

        setattr(cls, method, timed)


class Trial:
    """One submission on one workload, stepped on demand: update_params timed whole, the optimizer's step and
    Shampoo's refreshes by the timers, one step's FLOPs counted."""

    def __init__(self, workload_name: str, submission_name: str):
        from common import layout, search_space
        from compat import prng
        from runner.loading import load_submission
        from workloads.registry import get_workload

        folder = os.path.join(ROOT, "submissions", submission_name)
        point = search_space.load(os.path.join(folder, layout.SEARCH_SPACE)).points(1)[0]
        self.kronecker = submission_name != "nadamw"
        if self.kronecker:
            point = {**point, "start_preconditioning_step": 1}
        self.hp = search_space.make_hyperparameters(point)
        self.module = load_submission(os.path.join(folder, "submission.py")).module
        self.workload = w = get_workload(workload_name)
        data_rng, opt_rng, model_rng, self.rng = prng.split(prng.PRNGKey(0), 4)
        self.queue = w._build_input_queue(data_rng, "train", data_dir=None,
                                          global_batch_size=self.module.get_batch_size(workload_name))  # fmt: skip
        self.params, self.state = w.init_model_fn(model_rng)
        self.opt_state = self.module.init_optimizer_state(w, self.params, self.state, self.hp, opt_rng)
        self.step_index = 0
        self.total, self.optimizer = [], []  # per timed step, seconds

    def step(self, timers: dict, record: bool = True, count_flops: bool = False) -> float:
        """One step; returns the FLOPs counted (0 unless ``count_flops``, which leaves the step untimed)."""
        from submissions import glue

        batch = self.module.data_selection(self.workload, self.queue, self.opt_state, self.params, self.state,
                                           self.hp, self.step_index, self.rng)  # fmt: skip
        counter = glue.flop_counter_mode() if count_flops else contextlib.nullcontext()
        timers["step"].seconds = 0.0
        start = time.perf_counter()
        with counter:
            self.opt_state, self.params, self.state = self.module.update_params(
                workload=self.workload, current_param_container=self.params,
                current_params_types=self.workload.model_params_types, model_state=self.state,
                hyperparameters=self.hp, batch=batch, loss_type=self.workload.loss_type,
                optimizer_state=self.opt_state, eval_results=[], global_step=self.step_index, rng=self.rng,
            )  # fmt: skip
        elapsed = time.perf_counter() - start
        self.step_index += 1
        if record and not count_flops:
            self.total.append(elapsed)
            self.optimizer.append(timers["step"].seconds)
        return float(counter.get_total_flops()) if count_flops else 0.0

    def kronecker_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of the parameters the submission routes to its Kronecker optimizer with preconditioning."""
        from submissions import glue

        policy = self.module._build.policy
        groups, _ = glue.route_parameters(self.params, self.workload.model_params_types, policy)
        return [(n, tuple(p.shape)) for g in groups if g.get("precondition", True) for n, p in g["params"]]


def measure(workload_name: str, steps: int, warmup: int, timers: dict) -> dict:
    """NAdamW and Shampoo on one workload, their steps interleaved: medians of update_params and optimizer seconds,
    Shampoo's refresh seconds (the step-1 refresh of every block), the forward+backward FLOPs of one batch (what
    the counter sees in a NAdamW step: its own arithmetic is elementwise) and Shampoo's counted extra FLOPs."""
    nadamw, shampoo = Trial(workload_name, "nadamw"), Trial(workload_name, "shampoo")
    timers["refresh"].seconds = 0.0
    shampoo.step(timers, record=False)  # step 1: the first refresh of every block
    refresh = timers["refresh"].seconds
    nadamw.step(timers, record=False)
    for i in range(warmup + steps):
        for trial in (nadamw, shampoo) if i % 2 == 0 else (shampoo, nadamw):
            trial.step(timers, record=i >= warmup)
    fb = nadamw.step(timers, count_flops=True)
    extra = shampoo.step(timers, count_flops=True) - fb
    out = {"refresh": refresh, "fb_flops": fb, "counted_extra": extra, "shapes": shampoo.kronecker_shapes()}
    for name, t in (("nadamw", nadamw), ("shampoo", shampoo)):
        out[name] = (statistics.median(t.total), statistics.median(t.optimizer))
    return out


def _gflop(x: float) -> str:
    return f"{x / 1e9:.3f}"


def _row(name: str, m: dict, cfg: KronConfig, budget: float) -> tuple[tuple[str, ...], list[BlockFlops]]:
    """One workload's row of the table (``main``'s header) and its blocks."""
    blocks = shampoo_blocks(m["shapes"], cfg)
    stats, apply_, roots = (sum(getattr(x, k) for x in blocks) for k in ("statistics", "application", "roots"))
    model = stats + apply_ + roots
    largest = max(blocks, key=lambda x: x.total, default=None)
    (ta, oa), (tb, ob) = m["nadamw"], m["shampoo"]
    amortised = m["refresh"] / cfg.precondition_frequency
    shapes = [shape for _, shape in m["shapes"]]
    rule = flops.block_for_budget(cfg, shapes, m["fb_flops"], budget)
    ruled = flops.steady_flops(cfg, flops.preconditioned_blocks(shapes, rule))
    return (
        name, _gflop(m["fb_flops"]), f"{_gflop(model)} = {_gflop(stats)} + {_gflop(apply_)} + {_gflop(roots)}",
        f"{model / (model + m['fb_flops']):.0%}",
        f"{largest.name} {'x'.join(map(str, largest.shape))}" if largest else "-",
        f"{_gflop(m['counted_extra'])} ({_gflop(stats + apply_)})",
        f"{ta * 1e3:.1f} ({oa / ta:.0%})",
        f"{(tb + amortised) * 1e3:.1f} ({(ob + amortised) / (tb + amortised):.0%})",
        f"{m['refresh'] * 1e3:.0f}", f"{(tb + amortised) / ta:.2f}",
        f"{(1 - oa / ta) / (1 - (ob + amortised) / (tb + amortised)):.2f}",
        f"{rule} ({ruled / (ruled + m['fb_flops']):.0%})",
    ), blocks  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="suite", help="comma-separated names; 'suite' is the CPU suite")
    parser.add_argument("--steps", type=int, default=8, help="timed steps after the warm-up")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--blocks", action="store_true", help="also print every block's FLOPs")
    parser.add_argument("--budget", type=float, default=0.25, help="the block-size rule's FLOP budget (of fwd+bwd)")
    args = parser.parse_args()
    import torch

    import precond
    from precond.config import PRESETS
    from precond.optimizer import KronOptimizer
    from submissions.glue import OptimizerSet
    from submissions.shampoo.options import OPTIONS

    timers = {"step": _Timer(), "refresh": _Timer()}
    for cls in (OptimizerSet, precond.NAdamW):
        timers["step"].wrap(cls)
    timers["refresh"].wrap(KronOptimizer, "_refresh")
    names = list(CPU_SUITE) if args.workloads == "suite" else args.workloads.split(",")
    cfg = KronConfig.build("shampoo", PRESETS["shampoo"], OPTIONS)
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; torch threads "
          f"{torch.get_num_threads()}; {args.steps} timed steps each after {args.warmup}, interleaved (Shampoo: "
          f"max_preconditioner_dim {cfg.max_preconditioner_dim}, refresh every {cfg.precondition_frequency})",
          flush=True)  # fmt: skip
    header = ("workload", "fwd+bwd GFLOP", "Shampoo model GFLOP/step: stats + apply + roots/100", "FLOP share",
              "largest block", "counted GFLOP (model: stats + apply)", "nadamw ms/step (optimizer share)",
              "shampoo ms/step (optimizer share)", "refresh ms (/100 per step)",
              "shampoo / nadamw per step", "same, from the shares",
              f"block-size rule at {args.budget:g} (FLOP share)")  # fmt: skip
    rows = []
    for name in names:
        row, blocks = _row(name, measure(name, args.steps, args.warmup, timers), cfg, args.budget)
        rows.append(row)
        print(" | ".join(row), flush=True)
        if args.blocks:
            for x in sorted(blocks, key=lambda x: -x.total):
                print(f"    {x.name} {x.shape}: stats {_gflop(x.statistics)}, apply {_gflop(x.application)}, "
                      f"roots {_gflop(x.roots)} GFLOP")  # fmt: skip
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
