"""Trial output in AlgoPerf's layout, TensorBoard events, and --resume_last_run after a preemption."""

import csv
import json
import os

import pytest

from compat import prng
from runner.experiment import ExperimentConfig, run_experiment
from runner.loading import load_submission
from runner.loop import TrialConfig, train_once
from tests.cli_helpers import NADAMW, NADAMW_SPACE, run_cli
from tests.fakes import SleepyWorkload, make_submission
from workloads.registry import get_workload

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_trial_files_and_tensorboard_events(tmp_path):
    cfg = ExperimentConfig(
        submission_path=NADAMW,
        tuning_search_space=NADAMW_SPACE,
        num_tuning_trials=2,
        hparam_start_index=1,
        experiment_dir=str(tmp_path),
        experiment_name="logs",
        trial=TrialConfig(
            workload_name="mnist", max_global_steps=40, rng_seed=0, progress=False, flags={"workload": "mnist"}
        ),
    )
    (result,) = run_experiment(cfg, get_workload("mnist"))
    trial = tmp_path / "logs" / "mnist_pytorch" / "trial_2"  # hparam_start_index=1 runs the second point only
    assert result.trial_dir == str(trial) and not (tmp_path / "logs" / "mnist_pytorch" / "trial_1").exists()
    names = set(os.listdir(trial))
    assert {
        "hparams.json",
        "flags_0.json",
        "meta_data_0.json",
        "measurements.csv",
        "eval_measurements.csv",
        "checkpoint.pt",
    } <= names
    assert json.loads((trial / "hparams.json").read_text())["label_smoothing"] == 0.2  # the second point
    assert json.loads((trial / "meta_data_0.json").read_text())["rng_seed"] == 0
    rows = read_csv(trial / "eval_measurements.csv")
    assert [int(r["global_step"]) for r in rows] == [s for s, _ in result.eval_results]
    for column in (
        "score",
        "accumulated_submission_time",
        "accumulated_eval_time",
        "accumulated_logging_time",
        "total_duration",
        "train/accuracy",
        "validation/accuracy",
        "test/accuracy",
        "validation/loss",
    ):
        assert column in rows[0]
    assert float(rows[-1]["score"]) == pytest.approx(result.submission_time)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = [n for n in names if n.startswith("events.out.tfevents")]
    assert len(events) == 1
    acc = EventAccumulator(str(trial))
    acc.Reload()
    scalars = acc.Scalars("validation/accuracy")
    assert [s.step for s in scalars] == [int(r["global_step"]) for r in rows]
    assert scalars[-1].value == pytest.approx(float(rows[-1]["validation/accuracy"]))


def test_resume_after_preemption_continues_from_the_checkpoint(tmp_path):
    cfg = TrialConfig(workload_name="sleepy", max_global_steps=12, rng_seed=0, progress=False)
    trial = tmp_path / "trial_1"
    trial.mkdir()
    with pytest.raises(KeyboardInterrupt):  # killed during step 7; the last checkpoint is from the eval at step 7
        train_once(
            SleepyWorkload(eval_period=0.0),
            make_submission(crash_at_step=7),
            None,
            prng.PRNGKey(0),
            cfg,
            trial_dir=str(trial),
        )
    first = read_csv(trial / "eval_measurements.csv")
    assert [int(r["global_step"]) for r in first] == list(range(1, 8))
    result = train_once(
        SleepyWorkload(eval_period=0.0), make_submission(), None, prng.PRNGKey(0), cfg, trial_dir=str(trial)
    )
    assert result.global_step == 12
    rows = read_csv(trial / "eval_measurements.csv")
    assert [int(r["global_step"]) for r in rows] == list(range(1, 13))  # no step evaluated twice
    assert [r["preemption_count"] for r in rows] == ["0"] * 7 + ["1"] * 5
    assert {"meta_data_1.json", "flags_1.json"} <= set(os.listdir(trial))
    # submission time keeps accumulating across the preemption
    assert float(rows[7]["score"]) > float(rows[6]["score"])


def test_resume_drops_rows_logged_after_the_checkpoint_and_a_torn_line(tmp_path):
    """A kill between logging an eval and saving its checkpoint, or in the middle of writing a row."""
    cfg = TrialConfig(workload_name="sleepy", max_global_steps=10, rng_seed=0, progress=False)
    trial = tmp_path / "trial_1"
    trial.mkdir()
    with pytest.raises(KeyboardInterrupt):  # the last checkpoint is from the eval at step 5
        train_once(SleepyWorkload(), make_submission(crash_at_step=5), None, prng.PRNGKey(0), cfg, str(trial))
    csv_path = trial / "eval_measurements.csv"
    lines = csv_path.read_text().splitlines(keepends=True)
    assert [int(r["global_step"]) for r in read_csv(csv_path)] == [1, 2, 3, 4, 5]
    late = lines[-1].replace("5,", "6,", 1)  # an eval row the checkpoint never saw
    csv_path.write_text("".join(lines) + late + late[: len(late) // 2])  # ... and a row torn mid-write
    train_once(SleepyWorkload(), make_submission(), None, prng.PRNGKey(0), cfg, str(trial))
    rows = read_csv(csv_path)
    assert [int(r["global_step"]) for r in rows] == list(range(1, 11))
    assert [r["preemption_count"] for r in rows] == ["0"] * 5 + ["1"] * 5

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(trial))
    acc.Reload()
    assert [s.step for s in acc.Scalars("validation/accuracy")] == list(range(1, 11))  # purged, not doubled


def test_a_trial_killed_before_its_first_checkpoint_restarts_cleanly(tmp_path):
    cfg = TrialConfig(workload_name="sleepy", max_global_steps=4, rng_seed=0, progress=False, save_checkpoints=False)
    trial = tmp_path / "trial_1"
    trial.mkdir()
    with pytest.raises(KeyboardInterrupt):
        train_once(SleepyWorkload(), make_submission(crash_at_step=3), None, prng.PRNGKey(0), cfg, str(trial))
    assert len(read_csv(trial / "eval_measurements.csv")) == 3 and not (trial / "checkpoint.pt").exists()
    train_once(SleepyWorkload(), make_submission(), None, prng.PRNGKey(0), cfg, str(trial))
    rows = read_csv(trial / "eval_measurements.csv")
    assert [int(r["global_step"]) for r in rows] == [1, 2, 3, 4] and {r["preemption_count"] for r in rows} == {"0"}


def test_resume_flag_through_the_cli_skips_a_finished_trial(tmp_path):
    args = [
        "--workload=mnist",
        f"--submission_path={NADAMW}",
        f"--tuning_search_space={NADAMW_SPACE}",
        f"--experiment_dir={tmp_path}",
        "--experiment_name=r",
        "--max_global_steps=5",
        "--rng_seed=0",
    ]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    again = run_cli(*args, "--resume_last_run")
    assert again.returncode == 0, again.stderr
    assert "ran 5 steps" in again.stdout  # nothing new ran: the checkpoint says training is complete
    rows = read_csv(tmp_path / "r" / "mnist_pytorch" / "trial_1" / "eval_measurements.csv")
    assert [int(r["global_step"]) for r in rows] == [1, 5]
    final = read_csv(tmp_path / "r" / "mnist_pytorch" / "trial_1" / "measurements.csv")
    assert len(final) == 1  # the final score is not logged twice


def test_submission_loader_imports_package_submissions_by_dotted_name():
    submission = load_submission(NADAMW)
    assert submission.module.__name__ == "submissions.nadamw.submission" and submission.name == "nadamw"
