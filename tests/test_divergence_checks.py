"""When the runner checks the parameters (runner/loop.py): every FINITE_CHECK_EVERY steps between evals, at each
eval and when training ends, so non-finite parameters end the trial within that many steps and never reach a
checkpoint. (tests/test_trust.py covers divergence at an eval and a non-finite eval loss.)"""

import math
import time

import pytest
import torch

from compat import prng
from runner.loop import FINITE_CHECK_EVERY, TrialConfig, train_once
from tests.fakes import SleepyWorkload
from tests.test_trust import diverging_at


def run(tmp_path, submission, workload, **config):
    cfg = TrialConfig(workload_name="sleepy", rng_seed=0, progress=False, **config)
    return train_once(workload, submission, None, prng.PRNGKey(0), cfg, str(tmp_path))


def assert_last_checkpoint_is_finite_at(tmp_path, step: int):
    blob = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert blob["global_step"] == step
    assert all(torch.isfinite(v).all() for v in blob["model_params"].values())


@pytest.mark.integration
def test_between_evals_a_divergence_is_found_at_the_next_check(tmp_path):
    nan_step = FINITE_CHECK_EVERY + 3  # the update that makes the NaN ends this step; no eval after step 1
    result = run(tmp_path, diverging_at(nan_step - 1), SleepyWorkload(eval_period=1e9), max_global_steps=100)
    found = math.ceil(nan_step / FINITE_CHECK_EVERY) * FINITE_CHECK_EVERY
    assert result.diverged_at_step == found == result.global_step and found - nan_step < FINITE_CHECK_EVERY
    assert_last_checkpoint_is_finite_at(tmp_path, 1)


@pytest.mark.integration
def test_the_final_eval_checks_the_parameters_before_its_checkpoint(tmp_path):
    steps = FINITE_CHECK_EVERY + 5  # training ends between two periodic checks
    result = run(tmp_path, diverging_at(steps - 2), SleepyWorkload(eval_period=1e9), max_global_steps=steps)
    assert result.diverged_at_step == steps == result.global_step
    assert_last_checkpoint_is_finite_at(tmp_path, 1)


@pytest.mark.integration
def test_a_budget_ending_between_checks_checks_the_parameters_before_the_last_checkpoint(tmp_path):
    submission = diverging_at(1)  # NaN from step 2 on
    update = submission.module.update_params

    def slow_update(**kw):  # at most 4 steps fit the budget: it runs out before the first periodic check
        time.sleep(0.02)
        return update(**kw)

    submission.module.update_params = slow_update
    result = run(tmp_path, submission, SleepyWorkload(budget=0.09, eval_period=1e9))
    assert 2 <= result.global_step < FINITE_CHECK_EVERY and not result.train_state["is_time_remaining"]
    assert result.diverged_at_step == result.global_step
    assert_last_checkpoint_is_finite_at(tmp_path, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_the_torch_check_finds_a_single_non_finite_value_in_any_float_dtype(dtype, bad):
    """numpy's isfinite on the CPU for numpy's dtypes, torch's sums for bfloat16: each finds one bad value."""
    from runner.frameworks import Torch

    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3)).to(dtype)
    assert Torch().finite(model)
    with torch.no_grad():
        model[1].weight[2, 3] = bad
    assert not Torch().finite(model)


def test_the_torch_check_is_exact_where_finite_values_overflow_a_sum():
    from runner.frameworks import Torch

    model = torch.nn.Linear(4, 4).to(torch.float16)
    with torch.no_grad():
        model.weight.fill_(60000.0)  # finite, but their float16 sum is not
    assert Torch().finite(model)


@pytest.mark.integration
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_the_jax_check_finds_a_non_finite_leaf_and_ignores_integer_leaves(dtype):
    jnp = pytest.importorskip("jax.numpy")
    from runner.frameworks import Jax

    params = {"w": jnp.ones((3, 2), dtype), "count": jnp.arange(3), "b": [jnp.zeros(2, dtype), 1.0]}
    assert Jax().finite(params)
    for bad in (math.nan, math.inf):
        assert not Jax().finite({**params, "w": params["w"].at[2, 1].set(bad)})
        assert not Jax().finite({**params, "b": [params["b"][0], bad]})
