"""Trial planning: search-space points per trial index, index ranges, and the directory checks."""

from contextlib import ExitStack

import pytest

from common.errors import UsageError
from runner.experiment import ExperimentConfig, plan_trials, prepare_trial_dirs
from runner.loop import TrialConfig
from tests.cli_helpers import NADAMW, NADAMW_SPACE

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)


def config(**kw):
    trial = TrialConfig(
        workload_name="mnist", rng_seed=kw.pop("rng_seed", 0), tuning_ruleset=kw.pop("ruleset", "external")
    )
    return ExperimentConfig(submission_path=NADAMW, trial=trial, **{"tuning_search_space": NADAMW_SPACE, **kw})


def test_points_follow_trial_indices():
    all_five = plan_trials(config(num_tuning_trials=5))
    middle = plan_trials(config(num_tuning_trials=5, hparam_start_index=1, hparam_end_index=3))
    assert [i for i, _ in middle] == [1, 2] and middle == all_five[1:3]
    assert plan_trials(config(ruleset="self", tuning_search_space=None)) == [(0, None)]


def test_range_spaces_are_reproducible_from_the_seed(tmp_path):
    space = tmp_path / "space.json"
    space.write_text('{"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"}}')
    a = plan_trials(config(tuning_search_space=str(space), num_tuning_trials=3, rng_seed=7))
    b = plan_trials(config(tuning_search_space=str(space), num_tuning_trials=3, rng_seed=7))
    c = plan_trials(config(tuning_search_space=str(space), num_tuning_trials=3, rng_seed=8))
    assert a == b and a != c


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"num_tuning_trials": 2, "hparam_start_index": 2}, "must satisfy 0 <= start < end"),
        ({"num_tuning_trials": 2, "hparam_end_index": 3}, "must satisfy 0 <= start < end"),
        ({"num_tuning_trials": 0}, "must be at least 1"),
    ],
)
def test_bad_index_ranges(kw, message):
    with pytest.raises(UsageError, match=message):
        plan_trials(config(**kw))


def test_experiment_dir_needs_a_name(tmp_path):
    with pytest.raises(UsageError, match="--experiment_name"), ExitStack() as locks:
        prepare_trial_dirs(config(experiment_dir=str(tmp_path)), [0], locks)
    with ExitStack() as locks:
        assert prepare_trial_dirs(config(), [0, 1], locks) == {0: None, 1: None}  # no experiment_dir: no logs


def test_missing_data_stops_before_any_directory_is_written(tmp_path):
    from runner.experiment import run_experiment
    from workloads.mnist.workload import MnistWorkload
    from workloads.registry import WorkloadError

    class NoData(MnistWorkload):
        def load_splits(self, data_dir):
            raise WorkloadError(f"MNIST not found in --data_dir={data_dir!r}; run `make data`")

    cfg = config(experiment_dir=str(tmp_path), experiment_name="e")
    with pytest.raises(WorkloadError, match="make data"):
        run_experiment(cfg, NoData())
    assert list(tmp_path.iterdir()) == []
