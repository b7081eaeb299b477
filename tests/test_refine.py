"""Refined time to target (runner/refine.py): copies of the model between evals, evaluated at the first crossing.

The workload's validation accuracy reads a counter held in the model's own buffers, which the submission bumps
every step, so an eval reports exactly which weights it was given: a copy evaluated as the live model, or the
live model not restored after the copies, would show in the counts.
"""

import json

import pytest
import torch

from compat import prng
from runner.loop import TrialConfig, train_once
from runner.recorder import _earlier_crossing
from runner.refine import Crossing
from tests.fakes import SleepyWorkload, make_submission


class CountingWorkload(SleepyWorkload):
    """Accuracy 1.0 once the model's step counter (a buffer) reaches ``reach_at_step`` (test split: its own)."""

    def init_model_fn(self, rng):
        model, state = super().init_model_fn(rng)
        model.register_buffer("count", torch.zeros(()))
        return model, state

    def _eval_model_on_split(
        self, split, num_examples, global_batch_size, params, model_state, rng, data_dir, global_step=0
    ):
        count = int(params.count)
        if split == "validation":
            self.eval_calls.append((global_step, count))
        reach = self.test_reach_at_step if split == "test" else self.reach_at_step
        return {"accuracy": 1.0 if count >= reach else 0.0}


def counting_submission(update_sleep: float):
    submission = make_submission(update_sleep=update_sleep)
    update = submission.module.update_params

    def update_params(**kwargs):
        out = update(**kwargs)
        kwargs["current_param_container"].count += 1
        return out

    submission.module.update_params = update_params
    return submission


def run(workload, period, trial_dir=None, **config):
    cfg = TrialConfig(workload_name="counting", progress=False, refine_time_to_target_sec=period, **config)
    return train_once(workload, counting_submission(0.01), None, prng.PRNGKey(0), cfg, trial_dir=trial_dir)


@pytest.mark.integration
def test_the_first_copy_past_the_target_refines_the_grid_time():
    workload = CountingWorkload(eval_period=0.25, reach_at_step=37)
    result = run(workload, period=0.04)
    grid_step, refined_step = result.step_to_target, result.refined_step_to_target
    assert result.reached_validation and grid_step >= 37
    calls = workload.eval_calls
    grid_steps = [step for step, _ in result.eval_results]
    assert all(count == step for step, count in calls)  # every eval saw the weights of the step it names
    copies = [step for step, _ in calls if step not in grid_steps]
    assert copies, "the copies between the last two evals were evaluated"
    assert copies == sorted(copies) and max(copies) <= grid_step
    previous_eval = max(step for step in grid_steps if step < grid_step)
    assert all(previous_eval < step for step in copies)
    assert refined_step == min([step for step in copies if step >= 37] or [grid_step])
    assert all(step < 37 for step in copies if step < refined_step)
    assert refined_step - 37 <= 8  # a copy every ~4 steps of 10 ms
    assert result.refined_time_to_target <= result.time_to_target
    assert result.global_step == grid_step  # both targets met at the grid eval: training stopped there


@pytest.mark.integration
def test_the_live_model_keeps_its_own_weights_after_the_copies_are_evaluated():
    workload = CountingWorkload(eval_period=0.25, reach_at_step=37, test_reach_at_step=10**9)
    result = run(workload, period=0.04, max_global_steps=120)  # the test target is never met: training goes on
    assert result.refined_step_to_target is not None
    evals_after = [(step, count) for step, count in workload.eval_calls if step > result.step_to_target]
    assert evals_after and all(count == step for step, count in evals_after)


@pytest.mark.integration
def test_off_by_default_and_nothing_is_copied():
    workload = CountingWorkload(eval_period=0.25, reach_at_step=37)
    cfg = TrialConfig(workload_name="counting", progress=False)
    result = train_once(workload, counting_submission(0.01), None, prng.PRNGKey(0), cfg)
    assert result.refined_time_to_target is None and result.refined_step_to_target is None
    assert [step for step, _ in workload.eval_calls] == [step for step, _ in result.eval_results]


@pytest.mark.integration
def test_the_crossing_is_recorded_in_the_meta_data_and_read_back_on_resume(tmp_path):
    workload = CountingWorkload(eval_period=0.25, reach_at_step=37)
    result = run(workload, period=0.04, trial_dir=str(tmp_path))
    record = json.loads((tmp_path / "meta_data_0.json").read_text())["refined_time_to_target"]
    assert record["step"] == result.refined_step_to_target and record["grid_step"] == result.step_to_target
    assert record["period"] == 0.04 and record["evaluated"] >= 1
    assert _earlier_crossing(str(tmp_path), 1) == Crossing(**record)
    assert _earlier_crossing(str(tmp_path), 0) is None


def test_jax_copies_survive_the_donation_of_the_originals():
    jnp = pytest.importorskip("jax.numpy")
    from runner.frameworks import Jax

    params = {"w": jnp.arange(3.0)}
    copy = Jax().snapshot(params, None)
    params["w"].delete()  # what a jitted step with donate_argnums does to its inputs
    with Jax().swapped(params, None, copy) as (evaluated, _):
        assert evaluated["w"].tolist() == [0.0, 1.0, 2.0]
