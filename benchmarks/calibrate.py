"""Calibrate a workload's budget: time to target of a submission's first search-space point over seeds.

Prints one row per seed (steps and submission seconds to the validation target, refined between evals by
``--refine`` seconds, runner/refine.py) and the median, with the budget (``--budget_factor`` x median) and
step_hint (the baseline's steps within that budget) it implies, and the coefficient of variation of steps to
target over the seeds (sample standard deviation / mean): steps are machine-independent, so their spread is the
target's own lottery (issue 29 asks for <= 10% over 5 seeds). ``--json`` also writes the rows to a file.

    python -m benchmarks.calibrate --workload=mnist [--seeds 0 1 2] [--submission_path=...] [--json=out.json]
"""

import os

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import argparse  # noqa: E402
import json  # noqa: E402
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
    parser.add_argument(
        "--refine", type=float, default=1.0, help="seconds between model copies that refine the crossing; 0: grid"
    )
    parser.add_argument("--json", default=None, help="also write the per-seed rows and summary to this file")
    args = parser.parse_args()
    space_path = args.tuning_search_space or os.path.join(os.path.dirname(args.submission_path), layout.SEARCH_SPACE)
    point = search_space.load(space_path).points(1)[0]
    hyperparameters = search_space.make_hyperparameters(point)
    submission = load_submission(args.submission_path)
    rows = [_run_seed(args, submission, hyperparameters, seed) for seed in args.seeds]
    summary = summarize(rows, args.budget_factor)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"workload": args.workload, "submission": args.submission_path, "rows": rows, **summary}, f)
    if summary["missed"]:
        print(f"{summary['missed']} of {len(rows)} seeds missed the target: raise the budget and rerun")
        return
    print(
        f"median: {summary['median_steps']:.0f} steps, {summary['median_time']:.2f} s to target; "
        f"{summary['ms_per_step']:.2f} ms/step"
    )
    print(f"steps to target: CV {summary['steps_cv']:.1%} over {len(rows)} seeds (time: {summary['time_cv']:.1%})")
    print(
        f"implied: budget {summary['budget']:.1f} s ({args.budget_factor:g} x median), "
        f"step_hint {summary['step_hint']:.0f}"
    )


def _run_seed(args, submission, hyperparameters, seed: int) -> dict:
    """One trial; its refined crossing (or the grid's where the refiner found none) and its cost per step."""
    workload = get_workload(args.workload)
    for attr, value in (
        ("max_allowed_runtime_sec", args.budget),
        ("step_hint", args.step_hint),
        ("validation_target_value", args.target),
        ("eval_period_time_sec", args.eval_period),
    ):
        if value is not None:
            setattr(workload, attr, value)
    cfg = TrialConfig(
        workload_name=args.workload,
        rng_seed=seed,
        progress=False,
        max_global_steps=args.max_steps,
        refine_time_to_target_sec=args.refine,
    )
    result = train_once(workload, submission, hyperparameters, prng.PRNGKey(seed), cfg)
    if args.trace:
        key = f"validation/{workload.target_metric_name}"
        for step, r in result.eval_results:
            test = r[key.replace("validation/", "test/")]
            print(f"  step {step:6d}  {r['score']:7.2f} s  {key} {r[key]:.4f}  (test {test:.4f})", flush=True)
    refined = result.refined_step_to_target is not None
    row = {
        "seed": seed,
        "steps": result.refined_step_to_target if refined else result.step_to_target,
        "time": result.refined_time_to_target if refined else result.time_to_target,
        "grid_steps": result.step_to_target,
        "grid_time": result.time_to_target,
        "sec_per_step": result.submission_time / result.global_step,
    }
    hit = "not reached" if row["steps"] is None else f"step {row['steps']:6d}  {row['time']:7.2f} s"
    grid = "" if row["grid_steps"] is None else f" (eval grid: step {row['grid_steps']}, {row['grid_time']:.2f} s)"
    print(
        f"seed {seed}: {hit}{grid}   ({row['sec_per_step'] * 1e3:.2f} ms/step, budget {result.budget_sec:g} s, "
        f"step_hint {workload.step_hint})",
        flush=True,
    )
    return row


def cv(values) -> float:
    """Coefficient of variation: sample standard deviation over the mean (0 for fewer than two values)."""
    values = list(values)
    return statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else 0.0


def summarize(rows: list[dict], budget_factor: float) -> dict:
    """Medians, the spread of steps and time to target over seeds, and the budget and step_hint they imply."""
    reached = [r for r in rows if r["steps"] is not None]
    summary = {"missed": len(rows) - len(reached)}
    if summary["missed"]:
        return summary
    median_time = statistics.median(r["time"] for r in reached)
    sec_per_step = statistics.median(r["sec_per_step"] for r in reached)
    summary.update(
        median_steps=statistics.median(r["steps"] for r in reached),
        median_time=median_time,
        ms_per_step=sec_per_step * 1e3,
        steps_cv=cv(r["steps"] for r in reached),
        time_cv=cv(r["time"] for r in reached),
        budget=budget_factor * median_time,
        step_hint=budget_factor * median_time / sec_per_step,
    )
    return summary


if __name__ == "__main__":
    main()
