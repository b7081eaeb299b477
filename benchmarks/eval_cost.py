"""What evaluation costs on each suite workload, and the eval period that resolves time to target to ~5%.

Per workload: the seconds of one evaluation (AlgoPerf's: the eval-train subset, validation and test, at the
workload's eval batch size; the median of ``--evals`` evaluations after the first, each following one NAdamW
step), the NAdamW step time (``benchmarks.contention.measure``), and their ratio: an eval's cost in steps, which
a loaded machine slows alike. Budgets were calibrated at 3x NAdamW's median time to target and step_hint at the
baseline's steps within the budget, so a third of the budget is the nominal time to target T and budget /
step_hint the quiet machine's step time; an eval's quiet cost is its cost in steps times that. A time to target
is only known to within one eval period, and an eval costs wall time outside the budget, so the period is the
smallest that keeps evaluation under 25% of the wall clock (3 x the eval time), but no shorter than 2.5% of T
(half the 5% resolution asked: cheaper evals would only cost wall time), rounded up to 0.5 s.

    python -m benchmarks.eval_cost [--workloads suite] [--evals 5]
"""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import argparse  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.contention import ROOT, measure  # noqa: E402
from workloads.registry import CPU_SUITE, get_workload  # noqa: E402

EVAL_SHARE = 0.25  # the most of the wall clock evaluation may take
FINEST = 0.025  # the shortest period, as a fraction of the time to target


def eval_seconds(workload_name: str, evals: int) -> float:
    """The median wall time of one evaluation, over ``evals`` evaluations after a warm-up one."""
    import compat  # noqa: F401
    from common import layout, search_space
    from compat import prng
    from runner.loading import load_submission
    from runner.loop import TrialConfig, train_once

    folder = os.path.join(ROOT, "submissions", "nadamw")
    point = search_space.load(os.path.join(folder, layout.SEARCH_SPACE)).points(1)[0]
    workload = get_workload(workload_name)
    workload.eval_period_time_sec = 0.0  # an eval after every step
    cfg = TrialConfig(workload_name=workload_name, max_global_steps=evals + 1, save_checkpoints=False, progress=False)
    submission = load_submission(os.path.join(folder, "submission.py"))
    result = train_once(workload, submission, search_space.make_hyperparameters(point), prng.PRNGKey(0), cfg)
    accumulated = [r["accumulated_eval_time"] for _, r in result.eval_results]
    return statistics.median(np.diff(accumulated))


def period(eval_sec: float, time_to_target: float) -> float:
    """The eval period for a workload (module docstring): 3 x the eval time, at least FINEST x the time to target."""
    seconds = max(eval_sec * (1 - EVAL_SHARE) / EVAL_SHARE, FINEST * time_to_target)
    return math.ceil(seconds * 2) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="suite", help="comma-separated names; 'suite' is the CPU suite")
    parser.add_argument("--evals", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30, help="NAdamW steps timed for the step time")
    args = parser.parse_args()
    names = list(CPU_SUITE) if args.workloads == "suite" else args.workloads.split(",")
    print(
        "measured here: eval s, ms/step, eval in steps; quiet: ms/step, eval s, T s; "
        "eval share and resolution at the current period -> at the chosen one"
    )
    for name in names:
        workload = get_workload(name)
        t_eval, t_step = eval_seconds(name, args.evals), measure(name, "nadamw", args.steps)
        quiet_step = workload.max_allowed_runtime_sec / workload.step_hint
        quiet_eval, target_time = t_eval / t_step * quiet_step, workload.max_allowed_runtime_sec / 3
        now, new = workload.eval_period_time_sec, period(quiet_eval, target_time)
        print(
            f"{name:15s} {t_eval:6.2f} s {1e3 * t_step:7.1f} ms {t_eval / t_step:5.1f} steps | quiet "
            f"{1e3 * quiet_step:5.1f} ms {quiet_eval:5.2f} s T {target_time:3.0f} s | "
            f"{now:g} s: {quiet_eval / (quiet_eval + now):4.0%}, {now / target_time:4.0%} -> "
            f"{new:g} s: {quiet_eval / (quiet_eval + new):4.0%}, {new / target_time:4.0%}",
            flush=True,
        )


if __name__ == "__main__":
    main()
