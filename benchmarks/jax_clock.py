"""What waiting for the device before reading the clock changes in a JAX trial (docs/usage.md, "The clock").

kronbench's runner blocks on each step's outputs (``jax.block_until_ready``) before it reads the time; AlgoPerf's
runner reads ``time.time()`` as soon as ``update_params`` returns, so work still queued on the device is charged
to whichever timed or untimed interval happens to wait for it next (often the eval that reads the metrics). This
runs the same JAX trial both ways, alternating, and prints the submission time, the eval time and the time per
step of each.

    python -m benchmarks.jax_clock [--workload mnist] [--submission nadamw] [--steps 1000] [--repeats 2]
"""

from common.threads import configure_thread_env  # first: it must precede numpy, torch and jax

configure_thread_env()

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402

import compat  # noqa: E402,F401
from common import search_space  # noqa: E402
from runner import frameworks  # noqa: E402
from runner.loading import load_submission  # noqa: E402
from runner.loop import TrialConfig, train_once  # noqa: E402
from workloads.registry import get_workload  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_trial(workload_name: str, submission_name: str, steps: int, wait: bool) -> dict:
    original = frameworks.Jax.wait
    if not wait:
        frameworks.Jax.wait = lambda self, outputs: None  # AlgoPerf's clock: no wait before reading the time
    try:
        folder = os.path.join(ROOT, "submissions", submission_name)
        point = search_space.load(os.path.join(folder, "tuning_search_space.json")).points(1)[0]
        cfg = TrialConfig(workload_name=workload_name, framework="jax", max_global_steps=steps, progress=False)
        result = train_once(
            get_workload(workload_name, "jax"),
            load_submission(os.path.join(folder, "submission_jax.py")),
            search_space.make_hyperparameters(point),
            frameworks.get("jax").root_key(0),
            cfg,
        )
    finally:
        frameworks.Jax.wait = original
    ts = result.train_state
    first_eval_time = result.eval_results[0][1]["score"]  # the first step, compile included
    return {
        "submission_s": ts["accumulated_submission_time"],
        "eval_s": ts["accumulated_eval_time"],
        "ms_per_step_after_first": 1e3 * (ts["accumulated_submission_time"] - first_eval_time) / (steps - 1),
        "last_validation": result.last_validation,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mnist")
    parser.add_argument("--submission", default="nadamw")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    runs = {True: [], False: []}
    for _ in range(args.repeats):
        for wait in (True, False):  # interleaved, so both see the same machine load
            runs[wait].append(one_trial(args.workload, args.submission, args.steps, wait))
    print(f"{args.submission} on {args.workload}_jax, {args.steps} steps, medians of {args.repeats}")
    print("| clock | submission s | eval s | ms/step after step 1 | last validation |")
    print("|---|---|---|---|---|")
    for wait, label in ((True, "kronbench (block_until_ready)"), (False, "AlgoPerf (no wait)")):
        med = {k: statistics.median(r[k] for r in runs[wait]) for k in runs[wait][0]}
        print(
            f"| {label} | {med['submission_s']:.2f} | {med['eval_s']:.2f} | {med['ms_per_step_after_first']:.2f} "
            f"| {med['last_validation']:.4f} |"
        )


if __name__ == "__main__":
    main()
