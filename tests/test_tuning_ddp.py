"""Campaign trials of several processes (``--procs_per_trial=2``): each trial runs under torchrun with DDP, on
the local executor and on a local Ray cluster, and gives the numbers the one-process trial gives."""

import json
import os

import pytest

from tests.cli_helpers import run_cli

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)


def _campaign(tmp_path, name: str, *extra: str):
    args = [
        "--submissions=nadamw",
        "--workloads=mnist",
        "--num_studies=1",
        "--num_tuning_trials=1",
        f"--experiment_dir={tmp_path}",
        f"--experiment_name={name}",
        "--max_global_steps=6",
        "--rng_seed=5",
        "--progress=off",
        *extra,
    ]
    proc = run_cli(*args, module="tuning", env={"OMP_NUM_THREADS": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1/1 trials finished (1 in this run)" in proc.stdout, proc.stdout
    with open(tmp_path / name / "manifest.json") as f:
        (entry,) = json.load(f)["trials"].items()
    return entry


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return _campaign(tmp_path_factory.mktemp("single"), "single")


@pytest.mark.parametrize("executor", ["local", pytest.param("ray", marks=pytest.mark.slow)])  # ray: minutes
def test_a_trial_of_two_processes_matches_the_one_process_trial(tmp_path, executor, single):
    trial_id, single = single
    extra = ["--executor=ray", "--cpus_per_trial=1"] if executor == "ray" else []
    ddp_id, ddp = _campaign(tmp_path, "ddp", "--procs_per_trial=2", *extra)
    assert ddp_id == trial_id and ddp["status"] == "done" and ddp["attempts"] == 1
    assert ddp["result"]["global_step"] == single["result"]["global_step"] == 6
    assert ddp["result"]["last_validation"] == pytest.approx(single["result"]["last_validation"], abs=1e-4)
    trial = tmp_path / "ddp" / ddp_id
    meta = json.loads((trial / "meta_data_0.json").read_text())
    assert meta["torchrun"]["world_size"] == 2
    assert len([n for n in os.listdir(trial) if n.startswith("events.out.tfevents")]) == 1  # rank 0 alone wrote


def test_procs_per_trial_below_one_is_one_line(tmp_path):
    proc = run_cli(
        "--submissions=nadamw", "--workloads=mnist", f"--experiment_dir={tmp_path}", "--experiment_name=x",
        "--procs_per_trial=0", module="tuning",
    )  # fmt: skip
    assert proc.returncode == 2 and "--procs_per_trial=0 must be at least 1" in proc.stderr
