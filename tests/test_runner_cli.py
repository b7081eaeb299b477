"""``python -m runner`` on bad input: one line naming problem and fix, exit code 2, nothing lost."""

import os

import pytest

from tests.cli_helpers import FIXTURES, NADAMW, NADAMW_SPACE, run_cli

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def base_args(tmp_path, **overrides):
    args = {
        "workload": "mnist",
        "submission_path": NADAMW,
        "tuning_search_space": NADAMW_SPACE,
        "experiment_dir": str(tmp_path),
        "experiment_name": "e",
        "max_global_steps": "2",
    }
    args.update(overrides)
    return [f"--{k}={v}" for k, v in args.items() if v is not None]


def test_missing_submission_file(tmp_path):
    proc = run_cli(*base_args(tmp_path, submission_path=str(tmp_path / "nope.py")))
    assert_one_line_error(proc, "nope.py", "not found", "--submission_path")


def test_submission_lacking_functions_names_them(tmp_path):
    proc = run_cli(*base_args(tmp_path, submission_path=os.path.join(FIXTURES, "missing_update", "submission.py")))
    assert_one_line_error(proc, "update_params, data_selection")


def test_unknown_workload_lists_known_ones(tmp_path):
    proc = run_cli(*base_args(tmp_path, workload="imagenet_mlp"))
    assert_one_line_error(proc, "unknown workload 'imagenet_mlp'", "mnist")


def test_malformed_search_space_names_file_and_reason(tmp_path):
    space = tmp_path / "space.json"
    space.write_text('{"learning_rate": {"min": 1, "max": 0.1, "scaling": "log"}}')
    proc = run_cli(*base_args(tmp_path, tuning_search_space=str(space)))
    assert_one_line_error(proc, str(space), "min 1 > max 0.1")
    space.write_text("[{")
    assert_one_line_error(run_cli(*base_args(tmp_path, tuning_search_space=str(space))), "not valid JSON")


@pytest.mark.parametrize(
    "ruleset, space, fragment",
    [
        ("external", None, "needs --tuning_search_space"),
        ("self", NADAMW_SPACE, "not allowed with --tuning_ruleset=self"),
    ],
)
def test_ruleset_and_search_space_must_agree(tmp_path, ruleset, space, fragment):
    proc = run_cli(*base_args(tmp_path, tuning_search_space=space), f"--tuning_ruleset={ruleset}")
    assert_one_line_error(proc, fragment)


def test_existing_trial_dir_is_refused_and_kept(tmp_path):
    trial = tmp_path / "e" / "mnist_pytorch" / "trial_1"
    trial.mkdir(parents=True)
    (trial / "eval_measurements.csv").write_text("precious\n")
    proc = run_cli(*base_args(tmp_path))
    assert_one_line_error(proc, str(trial), "--overwrite", "--resume_last_run")
    assert (trial / "eval_measurements.csv").read_text() == "precious\n"
    assert os.listdir(trial) == ["eval_measurements.csv"]


def test_overwrite_and_resume_together_are_refused(tmp_path):
    assert_one_line_error(run_cli(*base_args(tmp_path), "--overwrite", "--resume_last_run"), "pass only one")


def test_algoperf_only_submission_runs_under_the_runner(tmp_path):
    """A third-party submission that imports only algoperf.spec / algoperf.pytorch_utils runs unchanged."""
    path = os.path.join(FIXTURES, "algoperf_only", "submission.py")
    proc = run_cli(
        *base_args(tmp_path, submission_path=path, tuning_search_space=None, max_global_steps="30"),
        "--tuning_ruleset=self",
        "--rng_seed=1",
    )
    assert proc.returncode == 0, proc.stderr
    assert "mnist / algoperf_only / trial 1:" in proc.stdout and "30 steps" in proc.stdout
    assert (tmp_path / "e" / "mnist_pytorch" / "trial_1" / "eval_measurements.csv").is_file()
