"""Shampoo / AdamW step time on the suite's models at AlgoPerf batch sizes, on the default device (CUDA when present).

Shampoo is kronbench's shampoo submission (the AlgoPerf v0.5 recipe: refreshes every ``--frequency`` steps, here
from step 1, so ``--steps`` timed steps amortise steps / frequency refreshes); AdamW is torch.optim.AdamW through
the same glue training step (forward, loss, backward, step), with the baseline's hyperparameters. Each suite
workload runs at the global batch size of its official analogue (glue.BATCH_SIZES), capped at its training set.
Reported: the optimizer step and the whole training step (data, forward, backward, step), each Shampoo / AdamW,
after 3 warm-up steps, with the device synchronised around every timed region. Used by benchmarks/gpu_check.sh.

    python -m benchmarks.gpu_step_time [--workloads fashion_resnet ...] [--steps 100] [--frequency 100]
        [--batch_size N (all workloads)] [--rows FILE (append "check|workload|result|detail" rows)]
"""

import argparse
import collections
import json
import os
import time

import torch

from compat import prng
from runner.loading import load_submission
from submissions import glue
from workloads.registry import CPU_SUITE, get_workload

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAMPOO = os.path.join(ROOT, "submissions", "shampoo")
# the official workload whose batch size each suite workload borrows (its AlgoPerf family, scoring.transfer's
# FAMILIES, where it has one; stdlib_lm, whose family finewebedu_lm has no batch size here, takes wmt's)
ANALOGUE = {
    "mnist": "mnist",
    "fashion_resnet": "imagenet_resnet",
    "fashion_vit": "imagenet_vit",
    "stdlib_lm": "wmt",
    "flights_dlrm": "criteo1tb",
    "qm9_gnn": "ogbg",
    "mri_unet": "fastmri",
    "bible_mt": "wmt",
    "espeak_asr": "librispeech_conformer",
}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def adamw(model, param_types, hp, hyperparameters):
    del param_types, hyperparameters
    return torch.optim.AdamW(model.parameters(), lr=hp.learning_rate, betas=hp.betas, weight_decay=hp.weight_decay)


def hyperparameters(frequency: int):
    with open(os.path.join(SHAMPOO, "tuning_search_space.json")) as f:
        point = json.load(f)[0] | {"precondition_frequency": frequency, "start_preconditioning_step": 1}
    return collections.namedtuple("Hyperparameters", point)(**point)


def time_training(workload, init_optimizer_state, update_params, batch_size: int, steps: int, hp) -> tuple:
    """(seconds per optimizer step, seconds per training step) over ``steps`` steps after 3 warm-up steps."""
    rng = prng.PRNGKey(0)
    queue = workload._build_input_queue(rng, "train", "", batch_size)
    params, model_state = workload.init_model_fn(rng)
    state = init_optimizer_state(workload, params, model_state, hp, rng)
    optimizer, in_step = state["optimizer"], [0.0]
    step = optimizer.step

    def timed_step(*args, **kwargs):
        _sync()
        start = time.perf_counter()
        out = step(*args, **kwargs)
        _sync()
        in_step[0] += time.perf_counter() - start
        return out

    optimizer.step = timed_step
    for i in range(steps + 3):
        if i == 3:
            _sync()
            in_step[0], start = 0.0, time.perf_counter()
        batch = next(queue)
        state, params, model_state = update_params(
            workload, params, None, model_state, hp, batch, workload.loss_type, state, [], i, rng
        )
    _sync()
    return in_step[0] / steps, (time.perf_counter() - start) / steps


def measure(name: str, steps: int, frequency: int, batch_size: int | None) -> dict:
    workload = get_workload(name)
    batch = batch_size or min(glue.BATCH_SIZES[ANALOGUE[name]], workload.num_train_examples)
    hp = hyperparameters(frequency)
    shampoo = load_submission(os.path.join(SHAMPOO, "submission.py")).module
    _, adamw_init, adamw_update, _ = glue.make_submission(adamw, glue.BASELINE_DEFAULTS)
    times = {
        "adamw": time_training(workload, adamw_init, adamw_update, batch, steps, hp),
        "shampoo": time_training(workload, shampoo.init_optimizer_state, shampoo.update_params, batch, steps, hp),
    }
    return {"batch": batch, **times}


def row(name: str, m: dict) -> str:
    (a_opt, a_total), (s_opt, s_total) = m["adamw"], m["shampoo"]
    return (
        f"Shampoo/AdamW step time|{name} (batch {m['batch']}, as {ANALOGUE[name]})|"
        f"{s_opt / a_opt:.1f}x optimizer step, {s_total / a_total:.2f}x training step|"
        f"AdamW {a_opt * 1e3:.2f} / {a_total * 1e3:.1f} ms, Shampoo {s_opt * 1e3:.2f} / {s_total * 1e3:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(CPU_SUITE), choices=list(ANALOGUE))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--frequency", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--rows", default=None)
    args = parser.parse_args()
    for name in args.workloads:  # each row as soon as it is measured
        line = row(name, measure(name, args.steps, args.frequency, args.batch_size))
        if args.rows:
            with open(args.rows, "a") as f:
                f.write(line + "\n")
        else:
            print(line, flush=True)


if __name__ == "__main__":
    main()
