"""Do the PyTorch and JAX trials of one algorithm train alike? Both frameworks start from the same weights (the
PyTorch model's, converted by ``workloads.convert``) and see the same batches (both input queues draw from the same
emulated key), run the submission's two files with its self-tuning defaults, and report the validation metric
of both every ``--every`` steps. What remains is float32 rounding, amplified by training; a real difference
between the glues, the models or the losses shows up as a drift that grows with the steps.

Time to target from a one-seed trial also differs between the frameworks because each draws its own initial
weights and batch order from the seed; this separates that luck from the implementation.

    python -m benchmarks.framework_parity [--workload flights_dlrm] [--submission nadamw] [--steps 400] [--every 50]
"""

from common.threads import configure_thread_env  # first: it must precede numpy, torch and jax

configure_thread_env()

import argparse  # noqa: E402
import os  # noqa: E402

import jax  # noqa: E402

import compat  # noqa: E402,F401
from algoperf import jax_sharding_utils  # noqa: E402
from compat import prng  # noqa: E402
from runner.loading import load_submission  # noqa: E402
from workloads.convert import flax_params  # noqa: E402
from workloads.registry import get_workload  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = {"pytorch": "submission.py", "jax": "submission_jax.py"}


class Side:
    """One framework's trial state, stepped by its submission file."""

    def __init__(self, framework: str, workload_name: str, submission_name: str, torch_model=None):
        """The PyTorch side initialises its model from seed 0; the JAX side converts that ``torch_model``."""
        self.workload = get_workload(workload_name, framework)
        self.submission = load_submission(os.path.join(ROOT, "submissions", submission_name, FILES[framework]))
        self.keys = prng if framework == "pytorch" else jax.random
        self.model_state = None
        if framework == "pytorch":
            self.params, _ = self.workload.init_model_fn(prng.PRNGKey(0))
        else:
            self.workload.init_model_fn(jax.random.PRNGKey(0))  # the parameter shapes and types; weights unused
            self.params = jax_sharding_utils.replicate(flax_params(torch_model))
        self.batch_size = self.submission.batch_size(workload_name)
        self.opt = self.submission.module.init_optimizer_state(
            self.workload, self.params, self.model_state, None, self.keys.PRNGKey(2)
        )
        self.batches = self.workload._build_input_queue(prng.PRNGKey(1), "train", "", self.batch_size)

    def step(self, global_step: int) -> None:
        w = self.workload
        self.opt, self.params, self.model_state = self.submission.module.update_params(
            w, self.params, w.model_params_types, self.model_state, None, next(self.batches), w.loss_type,
            self.opt, [], global_step, self.keys.PRNGKey(3),
        )  # fmt: skip

    def validation(self) -> float:
        w = self.workload
        metrics = w._eval_model_on_split(
            "validation", w.num_validation_examples, w.eval_batch_size, self.params, self.model_state,
            self.keys.PRNGKey(4), "",
        )  # fmt: skip
        return metrics[w.target_metric_name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="flights_dlrm")
    parser.add_argument("--submission", default="nadamw")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--every", type=int, default=50)
    args = parser.parse_args()
    sides = {"pytorch": Side("pytorch", args.workload, args.submission)}
    sides["jax"] = Side("jax", args.workload, args.submission, torch_model=sides["pytorch"].params)
    metric = sides["pytorch"].workload.target_metric_name
    print(f"{args.workload} / {args.submission}: validation {metric}, same initial weights and batches")
    print(f"{'step':>6} {'pytorch':>10} {'jax':>10} {'jax - pytorch':>14}")
    for step in range(args.steps):
        for side in sides.values():
            side.step(step)
        if (step + 1) % args.every == 0:
            t, j = sides["pytorch"].validation(), sides["jax"].validation()
            print(f"{step + 1:>6} {t:>10.4f} {j:>10.4f} {j - t:>+14.4f}", flush=True)


if __name__ == "__main__":
    main()
