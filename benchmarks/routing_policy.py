"""Steps and CPU time to the validation target under each embedding policy (submissions/routing.py).

For each submission and each ``precondition_embeddings`` value, interleaved: train from seed 0 with the
submission's first search-space point, evaluating the validation split every ``--eval_every`` steps (the target
is the workload's), until the target or ``--max_steps``. Step cost is the process's CPU time per step on one
thread, which a loaded machine does not inflate as it does wall time; steps x CPU ms/step estimates the time to
target on a quiet core. Steps are exact to ``--eval_every``.

    python -m benchmarks.routing_policy --workload=flights_dlrm [--submissions shampoo eshampoo] [--eval_every 25]
        [--max_steps 1000] [--policies false true]
"""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import argparse  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

import compat  # noqa: E402,F401
from common import layout, search_space  # noqa: E402
from compat import prng  # noqa: E402
from runner.loading import load_submission  # noqa: E402
from workloads.registry import get_workload  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(workload_name: str, submission_name: str, precondition: bool, eval_every: int, max_steps: int) -> dict:
    """Steps to target (None: not within max_steps) and CPU seconds per training step."""
    folder = os.path.join(ROOT, "submissions", submission_name)
    point = search_space.load(os.path.join(folder, layout.SEARCH_SPACE)).points(1)[0]
    hp = search_space.make_hyperparameters({**point, "precondition_embeddings": precondition})
    module = load_submission(os.path.join(folder, "submission.py")).module
    workload = get_workload(workload_name)
    data_rng, opt_rng, model_rng, rng = prng.split(prng.PRNGKey(0), 4)
    queue = workload._build_input_queue(data_rng, "train", "", module.get_batch_size(workload_name))
    model, model_state = workload.init_model_fn(model_rng)
    state = module.init_optimizer_state(workload, model, model_state, hp, opt_rng)
    metric, cpu, step = f"validation/{workload.target_metric_name}", 0.0, 0
    while step < max_steps:
        start = time.process_time()
        batch = module.data_selection(workload, queue, state, model, model_state, hp, step, rng)
        state, model, model_state = module.update_params(
            workload, model, workload.model_params_types, model_state, hp, batch, None, state, [], step, rng
        )
        cpu += time.process_time() - start
        step += 1
        if step % eval_every == 0:
            value = workload._eval_model_on_split(
                "validation", workload.num_validation_examples, workload.eval_batch_size, model, model_state, rng, ""
            )[workload.target_metric_name]
            if workload.has_reached_validation_target({metric: value}):
                return {"steps": step, "cpu_per_step": cpu / step, "value": value}
    return {"steps": None, "cpu_per_step": cpu / step, "value": value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", required=True)
    parser.add_argument("--submissions", nargs="+", default=["shampoo", "eshampoo"])
    parser.add_argument("--eval_every", type=int, default=25)
    parser.add_argument("--max_steps", type=int, default=1000)
    parser.add_argument("--policies", nargs="+", choices=["false", "true"], default=["false", "true"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.submissions:
        for precondition in (p == "true" for p in args.policies):
            r = run(args.workload, name, precondition, args.eval_every, args.max_steps)
            reached = f"step {r['steps']}" if r["steps"] else f"not by step {args.max_steps}"
            estimate = f"{r['steps'] * r['cpu_per_step']:.1f} CPU s" if r["steps"] else "-"
            print(
                f"{args.workload} {name} precondition_embeddings={precondition}: {reached} "
                f"(validation {r['value']:.4f}), {1e3 * r['cpu_per_step']:.1f} CPU ms/step, to target {estimate}",
                flush=True,
            )


if __name__ == "__main__":
    main()
