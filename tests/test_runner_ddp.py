"""Trials under torchrun (2 processes, gloo on CPU), as AlgoPerf runs its PyTorch workloads: one trial directory
written by rank 0, a resume after SIGKILL of the whole process group that reaches the target, and a DDP
checkpoint (sharded Shampoo state gathered to rank 0) that a one-process run continues exactly."""

import copy
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.cli_helpers import NADAMW, ROOT, run_cli

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

SHAMPOO = os.path.join(ROOT, "submissions", "shampoo", "submission.py")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}
# A point that reaches mnist's 0.97 in ~830 steps (seed 0), so two CPU processes stay well inside the budget.
FAST_POINT = {"learning_rate": 0.005, "one_minus_beta1": 0.1, "beta2": 0.99, "warmup_factor": 0.01, "weight_decay": 0.0}
# Shampoo with preconditioning from the first step, its roots refreshed every 5 steps; eps 1e-3 because with the
# default 1e-8 the inverse roots of the young, near-singular factors amplify the ranks' different summation order
# of the gradient (ulps) to 3% of the weights by step 20. (NAdamW agrees to 1e-8 either way.)
SHAMPOO_POINT = {**FAST_POINT, "start_preconditioning_step": 1, "precondition_frequency": 5, "eps": 1e-3}


def _space(tmp_path, point: dict) -> str:
    path = tmp_path / "space.json"
    path.write_text(json.dumps({k: {"feasible_points": [v]} for k, v in point.items()}))
    return str(path)


def _torchrun_args(nproc: int, *args: str) -> list[str]:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return [*torchrun, "-m", "runner", *args]


def _rows(trial_dir) -> list[dict]:
    with open(os.path.join(trial_dir, "eval_measurements.csv")) as f:
        return list(csv.DictReader(f))


def _run_args(submission: str, space: str, tmp_path, *extra: str) -> list[str]:
    return [
        "--workload=mnist",
        f"--submission_path={submission}",
        f"--tuning_search_space={space}",
        f"--experiment_dir={tmp_path}",
        "--experiment_name=ddp",
        "--rng_seed=0",
        "--progress=off",
        *extra,
    ]


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
def test_ddp_trial_resumes_after_sigkill_and_reaches_the_target(tmp_path):
    args = _run_args(NADAMW, _space(tmp_path, FAST_POINT), tmp_path)
    trial = tmp_path / "ddp" / "mnist_pytorch" / "trial_1"
    env = {**os.environ, **ONE_THREAD}
    first = subprocess.Popen(
        _torchrun_args(2, *args), cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:  # kill the whole group (torchrun and both ranks) once two evals are checkpointed
        deadline = time.monotonic() + 240
        while not (os.path.exists(trial / "checkpoint.pt") and len(_rows_or_none(trial)) >= 2):
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.2)
    finally:
        _kill_tree(first.pid)
        first.wait()
    killed_at = int(_rows(trial)[-1]["global_step"])

    second = subprocess.run(
        _torchrun_args(2, *args, "--resume_last_run"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("reached validation accuracy target 0.97") == 1, second.stdout  # rank 0 alone prints
    assert sorted(os.listdir(tmp_path / "ddp")) == ["mnist_pytorch"]
    assert sorted(os.listdir(tmp_path / "ddp" / "mnist_pytorch")) == ["trial_1"]
    steps = [int(r["global_step"]) for r in _rows(trial)]
    assert steps == sorted(set(steps)), steps  # strictly increasing across the kill
    assert any(int(r["preemption_count"]) == 1 and int(r["global_step"]) > killed_at for r in _rows(trial))
    meta = json.loads((trial / "meta_data_1.json").read_text())
    assert meta["torchrun"]["world_size"] == 2
    assert len([n for n in os.listdir(trial) if n.startswith("events.out.tfevents")]) == 2  # one per run, rank 0's


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every descendant at once (torchrun puts its workers in sessions of their own)."""
    tree, frontier = [pid], [pid]
    while frontier:
        children = subprocess.run(["pgrep", "-P", str(frontier.pop())], capture_output=True, text=True).stdout.split()
        tree += map(int, children)
        frontier += map(int, children)
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _rows_or_none(trial) -> list[dict]:
    try:
        return _rows(trial)
    except (FileNotFoundError, csv.Error):
        return []


def test_a_ddp_checkpoint_continues_in_one_process_as_if_never_split(tmp_path):
    """Shampoo for 20 steps on 2 processes equals 20 steps on one (to reduction order). Each checkpoint, loaded
    into a fresh one-process model and optimizer, holds the same optimizer state (the sharded one gathered by
    rank 0: every block's factors and roots), and 5 more steps from either give the same parameters."""
    space = _space(tmp_path, SHAMPOO_POINT)
    _twenty_steps_split_and_straight(space, tmp_path)
    trials = {run: tmp_path / run / "ddp" / "mnist_pytorch" / "trial_1" for run in ("split", "straight")}
    saved = {run: torch.load(t / "checkpoint.pt", weights_only=True) for run, t in trials.items()}
    assert not any(k.startswith("module.") for k in saved["split"]["model_params"])  # loads into a bare model
    assert saved["split"]["global_step"] == 20
    _assert_same_params(saved["split"]["model_params"], saved["straight"]["model_params"])

    loaded = {run: _continue_in_one_process(t, saved[run]["identity"], steps=5) for run, t in trials.items()}
    (opt_a, params_a), (opt_b, params_b) = loaded["split"], loaded["straight"]
    _assert_same_tree(opt_a, opt_b)
    _assert_same_params(params_a, params_b)
    assert not torch.equal(params_a["net.layer1.weight"], saved["split"]["model_params"]["net.layer1.weight"])


@pytest.mark.slow  # a minute: make test-slow
def test_the_block_size_rule_picks_the_same_size_on_every_rank_and_trains_as_one_process(tmp_path):
    """Shampoo with a block_budget that block 64 just meets against the global batch's forward and backward FLOPs
    (128 examples; a rank alone sees half, and by itself would halve to 32), 20 steps on 2 processes and on one:
    both pick 64 (the ranks sum their counts) and the parameters agree."""
    from precond import flops
    from precond.config import KronConfig
    from submissions import glue
    from workloads.registry import get_workload

    workload = get_workload("mnist")
    model, _ = workload.init_model_fn([0, 0])
    batch = next(workload._build_input_queue([0, 0], "train", "", 128))
    with glue.flop_counter_mode() as counter:
        glue._forward_backward(workload, model, None, batch, None, glue.TrainingHParams())
    cfg = KronConfig(variant="shampoo", max_preconditioner_dim=1024, precondition_frequency=5)
    budget = flops.steady_flops(cfg, flops.preconditioned_blocks([(128, 784), (10, 128)], 64))
    budget = budget / counter.get_total_flops() * (1 + 1e-6)
    space = _space(tmp_path, {**SHAMPOO_POINT, "block_budget": budget})
    _twenty_steps_split_and_straight(space, tmp_path)
    saved = {
        run: torch.load(tmp_path / run / "ddp" / "mnist_pytorch" / "trial_1" / "checkpoint.pt", weights_only=True)
        for run in ("split", "straight")
    }
    for blob in saved.values():
        rule = blob["optimizer_state"]["optimizer"]["block_rule"]
        assert rule == {"max_preconditioner_dim": 64, "awaits_batch_flops": False}
    _assert_same_params(saved["split"]["model_params"], saved["straight"]["model_params"])


def _twenty_steps_split_and_straight(space: str, tmp_path) -> None:
    """Shampoo 20 steps on mnist under torchrun with 2 processes (tmp_path/split) and in one (tmp_path/straight)."""
    env = {**os.environ, **ONE_THREAD}
    split = subprocess.run(
        _torchrun_args(2, *_run_args(SHAMPOO, space, tmp_path / "split", "--max_global_steps=20")),
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert split.returncode == 0, split.stderr[-3000:]
    straight = run_cli(*_run_args(SHAMPOO, space, tmp_path / "straight", "--max_global_steps=20"))
    assert straight.returncode == 0, straight.stderr[-3000:]


def _continue_in_one_process(trial_dir, identity: dict, steps: int):
    """(optimizer state right after loading the checkpoint, parameters after ``steps`` more updates)."""
    from common import search_space as ss
    from compat import prng
    from runner import checkpoint
    from runner.loading import load_submission
    from workloads.registry import get_workload

    workload, submission = get_workload("mnist"), load_submission(SHAMPOO)
    hyperparameters = ss.make_hyperparameters(SHAMPOO_POINT)
    model, model_state = workload.init_model_fn(prng.PRNGKey(7))  # weights differ: the checkpoint's must win
    opt = submission.module.init_optimizer_state(workload, model, model_state, hyperparameters, prng.PRNGKey(8))
    checkpoint.restore(str(trial_dir), identity, model, opt)
    loaded = copy.deepcopy(opt["optimizer"].state_dict())
    queue = workload._build_input_queue(prng.PRNGKey(9), "train", "", global_batch_size=128)
    for step in range(20, 20 + steps):
        opt, model, model_state = submission.module.update_params(
            workload, model, workload.model_params_types, model_state, hyperparameters, next(queue), None, opt, [],
            step, prng.PRNGKey(step),
        )  # fmt: skip
    return loaded, {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_tree(a, b, where: str = "optimizer state") -> None:
    if isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor), where
        # fp32 inverse roots of 784 x 784 factors: agreement to 2e-5 of their scale (factors agree to 1e-6)
        scale = float(b.abs().max()) if b.is_floating_point() and b.numel() else 1.0
        torch.testing.assert_close(a, b, rtol=1e-4, atol=5e-5 * scale, msg=where)
    elif isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in b:
            _assert_same_tree(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(b, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _assert_same_params(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("nproc", [3])
def test_a_batch_that_does_not_split_over_the_ranks_is_one_line(tmp_path, nproc):
    proc = subprocess.run(
        _torchrun_args(nproc, *_run_args(NADAMW, _space(tmp_path, FAST_POINT), tmp_path, "--max_global_steps=2")),
        cwd=ROOT, env={**os.environ, **ONE_THREAD}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "global batch size 128 for mnist does not split over 3 processes" in proc.stderr
