"""The runner's clock against AlgoPerf's rules: what is charged, when evals happen, when training stops."""

from types import MappingProxyType

import numpy as np
import pytest

from compat import prng
from runner.loop import TrialConfig, train_once
from tests.fakes import SleepyWorkload, make_submission


def run(workload, submission, **config):
    cfg = TrialConfig(workload_name="sleepy", progress=False, **config)
    return train_once(workload, submission, None, prng.PRNGKey(0), cfg)


@pytest.mark.integration
def test_eval_time_is_not_charged():
    workload = SleepyWorkload(eval_period=0.0, eval_sleep=0.2)
    result = run(workload, make_submission(), max_global_steps=4)
    assert len(workload.eval_calls) == 4
    assert result.train_state["accumulated_eval_time"] >= 4 * 0.2
    assert result.submission_time < 0.2  # four tiny SGD steps; none of the 0.8 s of eval sleep


@pytest.mark.integration
def test_update_time_is_charged():
    result = run(SleepyWorkload(eval_period=1e9), make_submission(update_sleep=0.05), max_global_steps=4)
    assert 4 * 0.05 <= result.submission_time < 4 * 0.05 + 0.15


def test_prepare_for_eval_is_charged():
    workload = SleepyWorkload(eval_period=0.0)
    result = run(workload, make_submission(prepare_sleep=0.05), max_global_steps=3)
    assert result.submission_time >= 3 * 0.05


@pytest.mark.integration
def test_budget_stops_the_run():
    workload = SleepyWorkload(budget=0.3, eval_period=1e9)
    result = run(workload, make_submission(update_sleep=0.05))
    assert not result.reached_validation
    assert 0.3 <= result.submission_time < 0.3 + 0.1
    assert 6 <= result.global_step <= 8
    assert result.budget_sec == 0.3


@pytest.mark.integration
def test_self_tuning_gets_one_and_a_half_budgets():
    workload = SleepyWorkload(budget=0.3, eval_period=1e9)
    external = run(workload, make_submission(update_sleep=0.05))
    self_tuned = run(
        SleepyWorkload(budget=0.3, eval_period=1e9), make_submission(update_sleep=0.05), tuning_ruleset="self"
    )
    assert self_tuned.budget_sec == pytest.approx(0.45)
    assert 0.45 <= self_tuned.submission_time < 0.45 + 0.1
    assert self_tuned.global_step > external.global_step


def test_first_eval_follows_step_one_then_the_period():
    workload = SleepyWorkload(eval_period=1e9)
    result = run(workload, make_submission(), max_global_steps=5)
    # step 1: last_eval_time starts at 0; step 5: training complete (max_global_steps) forces the final eval
    assert [step for step, _ in result.eval_results] == [1, 5]


def test_stops_when_both_targets_are_reached_and_records_time_to_target():
    workload = SleepyWorkload(eval_period=0.0, reach_at_step=3, test_reach_at_step=5)
    result = run(workload, make_submission(), max_global_steps=100)
    assert result.global_step == 5
    assert result.reached_validation and result.reached_test
    assert result.step_to_target == 3
    assert result.time_to_target == result.eval_results[2][1]["score"]


def test_training_complete_error_ends_with_a_final_eval():
    workload = SleepyWorkload(eval_period=1e9)
    result = run(workload, make_submission(complete_at_step=3))
    assert result.global_step == 4  # the raising step still counts, as in AlgoPerf
    assert [step for step, _ in result.eval_results] == [1, 4]


def test_train_state_is_passed_read_only_only_when_asked_for():
    seen = []
    run(
        SleepyWorkload(eval_period=0.0),
        make_submission(with_train_state=True, seen_train_states=seen),
        max_global_steps=3,
    )
    assert len(seen) == 3 and all(isinstance(s, MappingProxyType) for s in seen)
    with pytest.raises(TypeError):
        seen[0]["training_complete"] = True
    assert seen[-1]["accumulated_submission_time"] > 0  # a live view of the runner's state
    # a submission without the parameter is called without it (it would raise TypeError otherwise)
    run(SleepyWorkload(), make_submission(with_train_state=False), max_global_steps=2)


def test_score_column_is_accumulated_submission_time():
    result = run(SleepyWorkload(eval_period=0.0), make_submission(update_sleep=0.01), max_global_steps=3)
    scores = [r["score"] for _, r in result.eval_results]
    assert scores == sorted(scores) and scores[-1] == result.submission_time


STEPS_OVER_BLOCK_EDGES = (0, 1, 255, 256, 5, 3 * 256 + 7)  # across and back over KEY_BLOCK's edges


def test_step_keys_are_algoperfs_fold_in_then_split():
    from runner.keys import KEY_BLOCK, TorchStepKeys

    assert KEY_BLOCK == 256
    rng = prng.PRNGKey(3)
    keys = TorchStepKeys(rng)
    for step in STEPS_OVER_BLOCK_EDGES:
        expected = prng.split(prng.fold_in(rng, step), 4)
        assert (keys(step) == expected).all()


def test_torch_step_keys_match_prng_split_over_whole_blocks_and_past_2_31():
    from runner.keys import KEY_BLOCK, TorchStepKeys

    for rng in (prng.PRNGKey(0), np.array([2**32 - 1, 2**31 - 1], np.uint32)):  # entries past AlgoPerf's modulus
        keys = TorchStepKeys(rng)
        for step in (*range(2 * KEY_BLOCK), 2**31 - 1, 2**31 + 3, 10**10):
            expected = prng.split(prng.fold_in(rng, step), 4)
            got = keys(step)
            assert got.shape == (4, 2) and got.dtype == np.uint32 and (got == expected).all(), step


def test_torch_step_keys_take_prng_split_where_randint_would_redraw():
    """A raw MT19937 output of 2**31 - 1 after masking is one randint rejects: that step's keys come from
    prng.split itself (the real stream almost never hits it, so a generator is made to)."""
    from runner.keys import TorchStepKeys

    rng = prng.PRNGKey(5)
    keys = TorchStepKeys(rng)
    real = keys._mt

    class Rejecting:
        calls = 0

        def _legacy_seeding(self, seed):
            real._legacy_seeding(seed)

        def random_raw(self, n):
            Rejecting.calls += 1
            out = real.random_raw(n)
            if Rejecting.calls == 3:  # step 2
                out[5] = 2**32 - 1  # masks to 2**31 - 1
            return out

    keys._mt = Rejecting()
    for step in (0, 1, 2, 3):  # step 2's raw keys would hold 2**31 - 1, which randint never returns
        assert (keys(step) == prng.split(prng.fold_in(rng, step), 4)).all()
    assert Rejecting.calls == 256
    keys._fast = False  # numpy without MT19937._legacy_seeding: prng.split throughout
    keys._keys = []
    assert (keys(7) == prng.split(prng.fold_in(rng, 7), 4)).all()


@pytest.mark.integration
def test_jax_step_keys_are_algoperfs_fold_in_then_split():
    jax = pytest.importorskip("jax")
    from runner.keys import JaxStepKeys

    rng = jax.random.PRNGKey(3)
    keys = JaxStepKeys(rng)
    for step in STEPS_OVER_BLOCK_EDGES:
        expected = jax.random.split(jax.random.fold_in(rng, step), 4)
        got = keys(step)
        assert got.shape == (4, 2) and got.dtype == np.uint32 and (got == np.asarray(expected)).all()


@pytest.mark.integration
def test_loading_the_training_data_is_not_charged():
    """A campaign worker never loads the data before the clock (no check_data): building the input queue must."""
    import time

    from runner.loading import load_submission
    from workloads.mnist.workload import MnistWorkload

    class SlowToLoad(MnistWorkload):
        def load_splits(self, data_dir):
            time.sleep(1.0)
            return super().load_splits(data_dir)

        def _data_key(self, data_dir):  # its own copy: a split another test loaded would hide the sleep
            return ("slow-to-load", id(self))

    workload = SlowToLoad()
    workload.eval_period_time_sec = 1e9
    submission = load_submission("submissions/nadamw/submission.py")
    cfg = TrialConfig(workload_name="mnist", tuning_ruleset="self", max_global_steps=2, progress=False)
    result = train_once(workload, submission, None, prng.PRNGKey(0), cfg)
    assert result.global_step == 2 and result.eval_results  # it trained on the data the sleep loaded
    assert result.submission_time < 0.5
