"""Checks that tests/test_submissions.py (kronbench's submissions) and tests/test_thirdparty.py (other people's)
both run, stated once."""

import torch

from compat import prng
from runner.loop import TrialConfig, train_once
from tests.coverage_workload import CoverageWorkload
from workloads.registry import get_workload


def assert_a_few_steps_are_finite(submission, workload_name: str, hp, steps: int = 5) -> None:
    """``steps`` steps of ``submission`` at point ``hp`` on ``workload_name`` ("coverage": every parameter kind)
    run, with a finite training loss at each, and the final eval on tiny subsets."""
    workload = CoverageWorkload(eval_period=1e9) if workload_name == "coverage" else get_workload(workload_name)
    for attr in ("num_eval_train_examples", "num_validation_examples", "num_test_examples"):
        setattr(workload, attr, 16)  # this instance only
    losses = []
    original_loss_fn = workload.loss_fn

    def recording_loss_fn(*args, **kwargs):
        out = original_loss_fn(*args, **kwargs)
        losses.append(out["summed"].item())
        return out

    workload.loss_fn = recording_loss_fn
    cfg = TrialConfig(workload_name=workload_name, max_global_steps=steps, progress=False)
    result = train_once(workload, submission, hp, prng.PRNGKey(0), cfg)
    assert result.global_step == steps and len(losses) >= steps
    assert all(torch.isfinite(torch.tensor(losses)))
