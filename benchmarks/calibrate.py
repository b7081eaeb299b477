"""Calibrate a workload's budget: time to target of a submission's first search-space point over seeds.

Prints one row per seed (steps and submission seconds to the validation target) and the median, with the
budget (``--budget_factor`` x median) and step_hint (the baseline's steps within that budget) it implies.

    python -m benchmarks.calibrate --workload=mnist [--seeds 0 1 2] [--submission_path=...]
"""

import os

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import argparse  # noqa: E402
import statistics  # noqa: E402

import compat  # noqa: E402,F401
from common import layout, search_space  # noqa: E402
from compat import prng  # noqa: E402
from runner.loading import load_submission  # noqa: E402
from runner.loop import TrialConfig, train_once  # noqa: E402
from workloads.registry import get_workload  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mnist")
    parser.add_argument("--submission_path", default=os.path.join(ROOT, "submissions", "nadamw", "submission.py"))
    parser.add_argument("--tuning_search_space", default=None, help="default: beside the submission")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget_factor", type=float, default=3.0)
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="override the workload's max_allowed_runtime_sec (to time runs that exceed it)",
    )
    parser.add_argument("--step_hint", type=int, default=None, help="override the workload's step_hint")
    parser.add_argument("--target", type=float, default=None, help="override the validation target")
    parser.add_argument("--eval_period", type=float, default=None, help="override eval_period_time_sec")
    parser.add_argument("--max_steps", type=int, default=None, help="stop every run after this many steps")
    parser.add_argument("--trace", action="store_true", help="print every evaluation's validation metric")
    args = parser.parse_args()
    space_path = args.tuning_search_space or os.path.join(os.path.dirname(args.submission_path), layout.SEARCH_SPACE)
    point = search_space.load(space_path).points(1)[0]
    hyperparameters = search_space.make_hyperparameters(point)
    submission = load_submission(args.submission_path)
    rows = []
    for seed in args.seeds:
        workload = get_workload(args.workload)
        for attr, value in (
            ("max_allowed_runtime_sec", args.budget),
            ("step_hint", args.step_hint),
            ("validation_target_value", args.target),
            ("eval_period_time_sec", args.eval_period),
        ):
            if value is not None:
                setattr(workload, attr, value)
        cfg = TrialConfig(workload_name=args.workload, rng_seed=seed, progress=False, max_global_steps=args.max_steps)
        result = train_once(workload, submission, hyperparameters, prng.PRNGKey(seed), cfg)
        per_step = result.submission_time / result.global_step
        if args.trace:
            key = f"validation/{workload.target_metric_name}"
            for step, r in result.eval_results:
                test = r[key.replace("validation/", "test/")]
                print(f"  step {step:6d}  {r['score']:7.2f} s  {key} {r[key]:.4f}  (test {test:.4f})", flush=True)
        rows.append((seed, result.step_to_target, result.time_to_target, per_step))
        hit = (
            "not reached"
            if result.step_to_target is None
            else (f"step {result.step_to_target:6d}  {result.time_to_target:7.2f} s")
        )
        print(
            f"seed {seed}: {hit}   ({per_step * 1e3:.2f} ms/step, budget {result.budget_sec:g} s, "
            f"step_hint {workload.step_hint})",
            flush=True,
        )
    reached = [r for r in rows if r[1] is not None]
    if len(reached) < len(rows):
        print(f"{len(rows) - len(reached)} of {len(rows)} seeds missed the target: raise the budget and rerun")
        return
    median_time = statistics.median(r[2] for r in reached)
    median_steps = statistics.median(r[1] for r in reached)
    ms_per_step = statistics.median(r[3] for r in reached)
    budget = args.budget_factor * median_time
    print(f"median: {median_steps:.0f} steps, {median_time:.2f} s to target; {ms_per_step * 1e3:.2f} ms/step")
    print(f"implied: budget {budget:.1f} s ({args.budget_factor:g} x median), step_hint {budget / ms_per_step:.0f}")


if __name__ == "__main__":
    main()
