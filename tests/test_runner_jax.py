"""``--framework=jax`` trials end to end: every JAX submission on every JAX workload through the runner's loop,
the mnist target through ``python -m runner``, and a resume after SIGKILL."""

import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from common import search_space
from precond.registry import OPTIMIZERS
from runner import frameworks
from runner.loading import load_submission
from runner.loop import TrialConfig, train_once
from tests.cli_helpers import ROOT
from workloads.registry import JAX_WORKLOADS, get_workload

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

NAMES = list(OPTIMIZERS)
FORCED = dict(precondition_frequency=1, start_preconditioning_step=1)
# A point that reaches mnist's 0.97 in ~830 steps (seed 0, PyTorch), so the test keeps a margin on the budget.
FAST_POINT = {"learning_rate": 0.005, "one_minus_beta1": 0.1, "beta2": 0.99, "warmup_factor": 0.01, "weight_decay": 0.0}
ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}


def _jax_submission(name: str) -> str:
    return os.path.join(ROOT, "submissions", name, "submission_jax.py")


def _point(name: str, **overrides):
    space = search_space.load(os.path.join(ROOT, "submissions", name, "tuning_search_space.json"))
    return search_space.make_hyperparameters({**space.points(1)[0], **overrides})


def _pairs():
    """NAdamW and Shampoo on mnist by default; the rest of the product is slow (~8 min)."""
    for workload_name in sorted(JAX_WORKLOADS):
        for name in NAMES:
            slow = workload_name != "mnist" or name not in ("nadamw", "shampoo")
            yield pytest.param(name, workload_name, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("name,workload_name", list(_pairs()))
def test_five_steps_of_every_jax_submission_on_every_jax_workload(name, workload_name):
    workload = get_workload(workload_name, "jax")
    for attr in ("num_eval_train_examples", "num_validation_examples", "num_test_examples"):
        setattr(workload, attr, 16)  # this instance only: the evals on tiny subsets
    hp = _point(name, **(FORCED if name != "nadamw" else {}))
    cfg = TrialConfig(workload_name=workload_name, framework="jax", max_global_steps=5, progress=False)
    result = train_once(workload, load_submission(_jax_submission(name)), hp, frameworks.get("jax").root_key(0), cfg)
    assert result.global_step == 5 and result.diverged_at_step is None
    assert np.isfinite(result.eval_results[-1][1]["train/loss"])


def _args(tmp_path, *extra: str, self_tuning: bool = False) -> list[str]:
    space = tmp_path / "space.json"
    space.write_text(json.dumps({k: {"feasible_points": [v]} for k, v in FAST_POINT.items()}))
    ruleset = ["--tuning_ruleset=self"] if self_tuning else [f"--tuning_search_space={space}"]
    return [
        sys.executable, "-m", "runner", "--framework=jax", "--workload=mnist",
        f"--submission_path={_jax_submission('nadamw')}", *ruleset,
        f"--experiment_dir={tmp_path}", "--experiment_name=jax", "--rng_seed=0", "--progress=off", *extra,
    ]  # fmt: skip


def _rows(trial) -> list[dict]:
    try:
        with open(trial / "eval_measurements.csv") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
def test_a_jax_trial_reaches_the_mnist_target(tmp_path):
    proc = subprocess.run(_args(tmp_path), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reached validation accuracy target 0.97" in proc.stdout, proc.stdout
    trial = tmp_path / "jax" / "mnist_jax" / "trial_1"
    meta = json.loads((trial / "meta_data_0.json").read_text())
    assert meta["framework"] == "jax" and meta["jax"]
    assert (trial / "checkpoint.npz").exists() and not (trial / "checkpoint.pt").exists()


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
def test_a_jax_trial_resumes_after_sigkill_with_strictly_increasing_eval_rows(tmp_path):
    """Self-tuning (1.5x budget): each run compiles its step again, and that time is charged, as AlgoPerf does."""
    trial = tmp_path / "jax" / "mnist_jax" / "trial_1"
    args = _args(tmp_path, self_tuning=True)
    first = subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:  # kill it once three evals are checkpointed
        deadline = time.monotonic() + 240
        while not ((trial / "checkpoint.npz").exists() and len(_rows(trial)) >= 3):
            assert first.poll() is None, first.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.1)
    finally:
        first.kill()
        first.wait()
    killed_at = int(_rows(trial)[-1]["global_step"])
    resumed = subprocess.run(
        [*args, "--resume_last_run", f"--max_global_steps={killed_at + 40}"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = _rows(trial)
    steps = [int(r["global_step"]) for r in rows]
    assert steps == sorted(set(steps)), steps  # strictly increasing across the kill
    assert steps[-1] == killed_at + 40 and int(rows[-1]["preemption_count"]) == 1
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores)  # the restored submission time keeps counting from the checkpoint
