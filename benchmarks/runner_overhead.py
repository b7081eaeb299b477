"""Runner overhead on MNIST, PyTorch and JAX: the runner's per-step time over a bare loop's (goals: charged <= 1.01,
wall <= 1.05), and where the runner's per-step time goes.

Both loops call the same submission functions (data_selection + update_params of NAdamW) on the same data and
wait on the step's outputs (JAX: ``block_until_ready``, as the runner's clock does); the runner adds AlgoPerf's
per-step RNG derivation, clock reads, divergence checks and bookkeeping. Machine noise here is about +-10%
between runs, far above the goals, so the benchmark runs many short pairs in ABBA order (cancelling drift) and
reports the median of the per-pair ratios with its interquartile range. It pins torch (and XLA) to one intra-op
thread by default: with OMP_WAIT_POLICY=PASSIVE, two threads make this small model's step ~1.8x slower and add
+-5% jitter.
Two runner figures:
- charged: accumulated_submission_time / steps, what AlgoPerf's clock bills the submission;
- wall: the loop's wall time per step excluding evaluation and logging (everything the runner does per step).

Then a few more runner runs with each per-step phase timed (exclusive of the phases it calls), so a regression
names its cause: the timed step, the clock reads, the per-step keys, the divergence checks, progress and
logging, the refinement's bookkeeping, and the loop's own remainder. The timers add ~1 us per call, so these
runs are separate from the ratios above. Last, the runner's own microseconds per step, charged and wall, around a
submission that does nothing (over a bare loop around it): what the runner's code costs, free of the step's
noise that keeps the ratios from resolving 1% on a loaded machine (it misses only the runner's indirect costs,
such as caches its untimed work leaves cold for the next step).

    python -m benchmarks.runner_overhead [--framework both|pytorch|jax] [--steps 400] [--pairs 24] [--threads 1]
        [--breakdown_runs 3] [--own_runs 5] [--own_steps 20000]
"""

import os

from common.threads import configure_thread_env  # first: it must precede numpy, torch and jax

configure_thread_env()

import argparse  # noqa: E402
import functools  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import torch  # noqa: E402

import compat  # noqa: E402,F401
from benchmarks.step_time_jax import single_threaded  # noqa: E402
from runner import frameworks, loop, progress, refine  # noqa: E402
from runner.loading import Submission, load_submission  # noqa: E402
from runner.loop import TrialConfig, train_once  # noqa: E402
from workloads.registry import get_workload  # noqa: E402

FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "submissions", "nadamw")
SUBMISSION = {"pytorch": "submission.py", "jax": "submission_jax.py"}
EVAL_EXAMPLES = 1000
WALL_PHASES = ("timed step", "clock", "step keys", "checks", "progress", "refine", "loop remainder")


def bare_loop(fw, workload, submission, steps: int, seed: int) -> float:
    """Seconds per step after the first (a JAX submission compiles its step there, in every run) of the plainest
    loop over the same submission functions, waiting on each step's outputs."""
    module = submission.module
    data_rng, opt_rng, model_rng, rng = fw.split(fw.root_key(seed), 4)
    queue = workload._build_input_queue(data_rng, "train", "", module.get_batch_size("mnist"))
    model, state = workload.init_model_fn(model_rng)
    opt_state = module.init_optimizer_state(workload, model, state, None, opt_rng)
    types, loss_type = workload.model_params_types, workload.loss_type
    select_rng, update_rng = fw.split(rng, 2)  # the same keys every step: the bare loop derives none
    for step in range(steps):
        if step == 1:
            start = time.perf_counter()
        batch = module.data_selection(workload, queue, opt_state, model, state, None, step, select_rng)
        opt_state, model, state = module.update_params(
            workload, model, types, state, None, batch, loss_type, opt_state, [], step, update_rng
        )
        fw.wait((opt_state, model, state))
    return (time.perf_counter() - start) / (steps - 1)


def runner_loop(fw, workload, submission, steps: int, seed: int, refine_sec: float = 0.0) -> tuple[float, float]:
    """(charged, wall) seconds per step of the runner's loop after step 1 (a JAX submission compiles its step
    there, in every run), from the evals after step 1 and at the end."""
    cfg = TrialConfig(
        workload_name="mnist",
        framework=fw.name,
        tuning_ruleset="self",
        max_global_steps=steps,
        progress=False,
        refine_time_to_target_sec=refine_sec,
    )
    result = train_once(workload, submission, None, fw.root_key(seed), cfg)
    (_, first), (_, final) = result.eval_results[0], result.eval_results[-1]

    def wall(r):
        return r["total_duration"] - r["accumulated_eval_time"] - r["accumulated_logging_time"]

    return (final["score"] - first["score"]) / (steps - 1), (wall(final) - wall(first)) / (steps - 1)


class _PhaseTimer:
    """Exclusive wall time per phase: a phase's time excludes that of the timed phases it calls."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._stack: list[float] = []  # time spent in nested phases, per open phase

    def wrap(self, phase: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self._stack.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                nested = self._stack.pop()
                self.seconds[phase] = self.seconds.get(phase, 0.0) + elapsed - nested
                if self._stack:
                    self._stack[-1] += elapsed

        return timed


@contextmanager
def phase_timers(fw):
    """The runner's per-step phases timed while the block runs (module and class attributes patched, then
    restored). Names the loop's internals: when they change, this list changes with them."""
    timer = _PhaseTimer()
    step_keys = type(fw).step_keys
    patches = [
        (loop._Run, "loop", "loop remainder"),  # exclusive: the loop's own code between the phases
        (loop._Run, "_train_step", "timed step"),
        (loop, "get_time", "clock"),
        (loop._Run, "_diverged", "checks"),
        (type(fw), "finite", "checks"),
        (progress.Progress, "update", "progress"),
        (refine.Refiner, "due", "refine"),
        (refine.Refiner, "copy", "refine"),
        (refine.Refiner, "stepped", "refine"),  # before issue 34 (a before/after comparison runs this file on both)
        (loop._Run, "_eval_point", "eval point (not in wall)"),
    ]
    patches = [p for p in patches if hasattr(p[0], p[1])]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, phase in patches:
            setattr(owner, name, timer.wrap(phase, getattr(owner, name)))
        type(fw).step_keys = lambda self, rng: timer.wrap("step keys", step_keys(self, rng))
        yield timer.seconds
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
        type(fw).step_keys = step_keys


def breakdown(fw, workload, submission, steps: int, runs: int, refine_sec: float) -> dict[str, float]:
    """Median microseconds per step of each phase over ``runs`` instrumented runner runs."""
    per_run = []
    for i in range(runs):
        with phase_timers(fw) as seconds:
            runner_loop(fw, workload, submission, steps, 100 + i, refine_sec)
        per_run.append({k: v / steps * 1e6 for k, v in seconds.items()})
    return {k: statistics.median(r.get(k, 0.0) for r in per_run) for k in per_run[0]} if per_run else {}


def _idle_submission():
    """A submission whose step does nothing (the batch is a constant, the state passes through): the runner's loop
    around it is all the runner's own."""

    def update_params(*args, **kwargs):
        """Positionally (the bare loop) or by AlgoPerf's keywords (the runner): the state, unchanged."""
        if args:
            return args[7], args[1], args[3]
        return kwargs["optimizer_state"], kwargs["current_param_container"], kwargs["model_state"]

    module = types.SimpleNamespace(
        get_batch_size=lambda workload_name: 1,
        init_optimizer_state=lambda workload, params, model_state, hyperparameters, rng: {},
        update_params=update_params,
        data_selection=lambda workload, queue, opt_state, params, model_state, hyperparameters, step, rng: None,
    )
    return Submission(module, os.path.join(FOLDER, "idle.py"))


def runner_own(fw, workload, steps: int, runs: int, refine_sec: float) -> dict[str, float]:
    """Microseconds per step the runner adds inside the clock (charged) and in all (wall) around a submission
    that does nothing, over a bare loop around it (median of ``runs``); the workload's model is the real one, so
    the parameter checks cost what they cost in training. Insensitive to the step's own noise, unlike the
    ratios: these are what the ratios' overhead would be on a quiet machine, give or take cache effects."""
    idle = _idle_submission()
    charged, wall = [], []
    for i in range(runs):
        bare = bare_loop(fw, workload, idle, steps, i)
        c, w = runner_loop(fw, workload, idle, steps, i, refine_sec)
        charged.append(c - bare)
        wall.append(w - bare)
    return {"charged": statistics.median(charged) * 1e6, "wall": statistics.median(wall) * 1e6}


def measure(framework: str, args) -> dict:
    fw = frameworks.get(framework)
    workload = get_workload("mnist", framework)
    for attr in ("num_eval_train_examples", "num_validation_examples", "num_test_examples"):
        setattr(workload, attr, EVAL_EXAMPLES)  # evals are in neither figure: small ones keep the runs short
    workload.max_allowed_runtime_sec = 1e9  # this instance: every run does all its steps, however loaded the machine
    submission = load_submission(os.path.join(FOLDER, SUBMISSION[framework]))
    bare_loop(fw, workload, submission, 100, 0)  # warm up: data load, compilation, allocator, first-call costs
    runner_loop(fw, workload, submission, 100, 0, args.refine_sec)
    bare, charged, wall = [], [], []
    for i in range(args.pairs):
        runner_first = i % 4 in (1, 2)  # ABBA ordering
        if runner_first:
            c, w = runner_loop(fw, workload, submission, args.steps, i, args.refine_sec)
        bare.append(bare_loop(fw, workload, submission, args.steps, i))
        if not runner_first:
            c, w = runner_loop(fw, workload, submission, args.steps, i, args.refine_sec)
        charged.append(c)
        wall.append(w)
    out = {"bare": statistics.median(bare)}
    for name, values in (("charged", charged), ("wall", wall)):
        ratios = [v / b for v, b in zip(values, bare, strict=True)]
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        out[name] = (statistics.median(values), statistics.median(ratios), q1, q3)
    out["phases"] = breakdown(fw, workload, submission, args.steps, args.breakdown_runs, args.refine_sec)
    if args.own_runs:
        out["own"] = runner_own(fw, workload, args.own_steps, args.own_runs, args.refine_sec)
    return out


def report(results: dict, args) -> None:
    names = list(results)
    print(
        f"MNIST NAdamW, {torch.get_num_threads()} torch thread(s), {args.pairs} pairs of {args.steps}-step runs "
        f"(ABBA order), refinement {f'every {args.refine_sec:g} s' if args.refine_sec else 'off'}; "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print("| | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    print("| bare loop, ms/step | " + " | ".join(f"{r['bare'] * 1e3:.3f}" for r in results.values()) + " |")
    for name, goal in (("charged", 1.01), ("wall", 1.05)):
        cells = [f"{r[name][1]:.3f} [{r[name][2]:.3f}, {r[name][3]:.3f}]" for r in results.values()]
        print(f"| runner {name} / bare, median [IQR] (goal <= {goal}) | " + " | ".join(cells) + " |")
    if args.own_runs:
        print(
            f"\nThe runner's own time around a submission that does nothing, us/step over a bare loop's (median of "
            f"{args.own_runs} runs of {args.own_steps} steps), and as a share of the bare MNIST step above:"
        )
        print("| | " + " | ".join(names) + " |")
        print("|---" * (len(names) + 1) + "|")
        for name in ("charged", "wall"):
            cells = [f"{r['own'][name]:.1f} ({r['own'][name] / (r['bare'] * 1e6):.2%})" for r in results.values()]
            print(f"| {name} | " + " | ".join(cells) + " |")
    if not args.breakdown_runs:
        return
    print(f"\nPer-step phases of the runner's loop, us/step (median of {args.breakdown_runs} instrumented runs):")
    print("| phase | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for phase in (*WALL_PHASES, "eval point (not in wall)"):
        cells = [f"{r['phases'].get(phase, 0.0):.1f}" for r in results.values()]
        print(f"| {phase} | " + " | ".join(cells) + " |")
    in_wall = [sum(r["phases"].get(p, 0.0) for p in WALL_PHASES if p != "timed step") for r in results.values()]
    print("| runner's own (all but the timed step and evals) | " + " | ".join(f"{x:.1f}" for x in in_wall) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("both", "pytorch", "jax"), default="both")
    parser.add_argument("--steps", type=int, default=400, help="steps per run")
    parser.add_argument("--pairs", type=int, default=24, help="bare/runner pairs per framework")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads, 1: XLA's too (0: defaults)")
    parser.add_argument(
        "--breakdown_runs", type=int, default=3, help="instrumented runner runs per framework (0: no breakdown)"
    )
    parser.add_argument(
        "--own_runs", type=int, default=5, help="runs of the runner around an idle submission (0: skip them)"
    )
    parser.add_argument("--own_steps", type=int, default=20000, help="steps per run around the idle submission")
    parser.add_argument("--refine_sec", type=float, default=0.0, help="--refine_time_to_target_sec of the runner")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.threads == 1:
        single_threaded()  # XLA too, before JAX first computes
    frameworks_run = ("pytorch", "jax") if args.framework == "both" else (args.framework,)
    report({name: measure(name, args) for name in frameworks_run}, args)


if __name__ == "__main__":
    main()
