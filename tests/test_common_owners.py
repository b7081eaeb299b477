"""The single owners in common/: the trial layout, the two target rules, the thread environment, seeds, checks."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from common import checks, layout, seeds, targets, threads
from common.errors import UsageError
from tests.cli_helpers import ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)


def test_targets_strict_for_stopping_inclusive_for_scoring():
    # AlgoPerf: workloads stop on accuracy > target / loss < target; the scorer counts >= / <=
    def both(value, target, lower):
        return bool(targets.reached(value, target, lower, inclusive=False)), bool(
            targets.reached(value, target, lower, inclusive=True)
        )

    assert both(0.97, 0.97, False) == (False, True) and both(2.2, 2.2, True) == (False, True)  # at the target
    assert both(0.98, 0.97, False) == (True, True) and both(2.1, 2.2, True) == (True, True)  # past it
    assert both(0.96, 0.97, False) == (False, False) and both(2.3, 2.2, True) == (False, False)  # short of it
    for inclusive in (False, True):
        assert not targets.reached(math.nan, 0.97, False, inclusive=inclusive)
    assert not targets.reached(math.inf, 0.97, False, inclusive=True)  # the scorer refuses a non-finite value
    values = np.array([0.5, 0.97, np.nan, np.inf, 0.99])
    assert targets.reached(values, 0.97, False, inclusive=True).tolist() == [False, True, False, False, True]


def test_workloads_stop_strictly_and_scoring_counts_inclusively():
    from scoring.targets import target_of
    from workloads.registry import get_workload

    for name in ("mnist", "stdlib_lm"):  # an accuracy and a loss target
        workload, target = get_workload(name), target_of(name)
        at_target = {f"validation/{workload.target_metric_name}": workload.validation_target_value}
        assert target.value == workload.validation_target_value
        assert not workload.has_reached_validation_target(at_target)  # the runner keeps training
        assert target.reached(workload.validation_target_value)  # the scorer counts it


def test_layout_names_round_trip(tmp_path):
    path = layout.trial_dir(str(tmp_path), "mnist", "pytorch", 3)
    assert path == os.path.join(str(tmp_path), "mnist_pytorch", "trial_3")
    wl, trial = path.split(os.sep)[-2:]
    assert layout.parse_workload(wl) == ("mnist", "pytorch") and layout.parse_trial(trial) == 3
    assert layout.parse_workload("imagenet_resnet_silu_jax") == ("imagenet_resnet_silu", "jax")
    assert layout.parse_workload("mnist_tf") is None and layout.parse_trial("trial_x") is None
    assert layout.campaign_trial("nadamw", 0, "mnist", "pytorch", 1) == "nadamw/study_0/mnist_pytorch/trial_1"
    assert layout.parse_study("study_12") == 12 and layout.parse_study("studies") is None
    assert layout.is_meta_data(layout.meta_data_file(2)) and not layout.is_meta_data(layout.flags_file(2))


def test_thread_env_defaults_without_overriding_the_user():
    assert threads.configure_thread_env({}) == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}
    assert threads.configure_thread_env({"OPENBLAS_NUM_THREADS": "4"})["OPENBLAS_NUM_THREADS"] == "4"


def test_thread_env_module_loads_before_numpy_and_torch():
    code = "import sys, common.threads; assert not {'numpy', 'torch'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_drawn_seed_is_announced_and_in_range(capsys):
    seed = seeds.draw_seed("run")
    assert 0 <= seed <= checks.MAX_SEED
    assert f"--rng_seed={seed}" in capsys.readouterr().out


def test_ruleset_and_framework_checks():
    checks.tuning_ruleset("self")
    checks.framework("pytorch")
    with pytest.raises(UsageError, match="use external or self"):
        checks.tuning_ruleset("selfish")
    checks.framework("jax")
    with pytest.raises(UsageError):
        checks.framework("tf")
