"""What a trial never does, whatever it is given: write or delete through a symbolic link out of --experiment_dir,
delete a file it did not write, continue a log that lost rows its checkpoint holds, crash on a diverging
optimizer, or leave torchrun's ranks training after their launcher was killed (issue 27).

Each refusal is one ``error:`` line, exit 2, no traceback, and the folders involved (the one a link points at
included) byte for byte as they were.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bad_inputs import assert_refused, changed, run_main, snapshot
from tests.cli_helpers import NADAMW, NADAMW_SPACE, ROOT, run_cli

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

TRIAL = ("exp", "e", "mnist_pytorch", "trial_1")
CAMPAIGN_TRIAL = ("exp", "c", "nadamw", "study_0", "mnist_pytorch", "trial_1")


def runner_argv(tmp: Path, **flags) -> list[str]:
    args = {
        "workload": "mnist",
        "submission_path": NADAMW,
        "tuning_search_space": NADAMW_SPACE,
        "experiment_dir": str(tmp / "exp"),
        "experiment_name": "e",
        "max_global_steps": "2",
        "rng_seed": "0",
        **flags,
    }
    return [f"--{k}" if v is True else f"--{k}={v}" for k, v in args.items() if v is not None]


def tuning_argv(tmp: Path, **flags) -> list[str]:
    args = {
        "submissions": "nadamw",
        "workloads": "mnist",
        "experiment_dir": str(tmp / "exp"),
        "experiment_name": "c",
        "rng_seed": "0",
        "max_global_steps": "2",
        "progress": "off",
        **flags,
    }
    return [f"--{k}={v}" for k, v in args.items()]


@pytest.fixture(scope="module", autouse=True)
def warm():
    """Import what every case needs once: forked children share it."""
    import runner.experiment  # noqa: F401
    import tuning.campaign  # noqa: F401
    from runner.loading import load_submission
    from workloads.registry import get_workload

    get_workload("mnist").check_data("")
    load_submission(NADAMW)


def precious(tmp: Path) -> Path:
    """A folder outside --experiment_dir that a link will point at."""
    folder = tmp / "precious"
    (folder / "sub").mkdir(parents=True)
    (folder / "precious.txt").write_text("p\n")
    (folder / "sub" / "keep.txt").write_text("k\n")
    return folder


def link(tmp: Path, parts: tuple[str, ...], target: Path) -> Path:
    at = tmp.joinpath(*parts)
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(target, target_is_directory=True)
    return at


# (id, module, the link's place, extra flags): the link points at a folder outside --experiment_dir
LINKS = [
    ("trial_to_empty_folder", "runner", TRIAL, {}),  # which main wrote into
    ("trial", "runner", TRIAL, {}),
    ("trial_overwrite", "runner", TRIAL, {"overwrite": True}),
    ("trial_resume", "runner", TRIAL, {"resume_last_run": True}),
    ("workload", "runner", TRIAL[:3], {}),
    ("workload_overwrite", "runner", TRIAL[:3], {"overwrite": True}),
    ("name", "runner", TRIAL[:2], {}),
    ("name_overwrite", "runner", TRIAL[:2], {"overwrite": True}),
    ("campaign_name", "tuning", CAMPAIGN_TRIAL[:2], {}),
    ("campaign_submission", "tuning", CAMPAIGN_TRIAL[:3], {}),
    ("campaign_trial", "tuning", CAMPAIGN_TRIAL, {}),
]


@pytest.mark.parametrize("where, module, parts, flags", LINKS, ids=[c[0] for c in LINKS])
def test_no_write_or_delete_through_a_link(where, module, parts, flags, tmp_path):
    target = precious(tmp_path)
    if where == "trial_to_empty_folder":
        target = target / "empty"
        target.mkdir()
    at = link(tmp_path, parts, target)
    argv = runner_argv(tmp_path, **flags) if module == "runner" else tuning_argv(tmp_path, **flags)
    before, outside = snapshot(tmp_path), snapshot(target)
    outcome = run_main(module, argv)
    assert_refused(outcome, f"{at} is a symbolic link (to {target})")
    assert changed(outside, snapshot(target)) == [] and changed(before, snapshot(tmp_path)) == []


@pytest.mark.parametrize("flag", ["overwrite", "resume_last_run"])
def test_a_link_inside_a_trial_folder_is_refused(flag, tmp_path):
    """Appending to eval_measurements.csv would write into the file the link points at."""
    target = precious(tmp_path)
    trial = tmp_path.joinpath(*TRIAL)
    trial.mkdir(parents=True)
    (trial / "eval_measurements.csv").symlink_to(target / "precious.txt")
    before, outside = snapshot(tmp_path), snapshot(target)
    outcome = run_main("runner", runner_argv(tmp_path, **{flag: True}))
    assert_refused(outcome, f"{trial / 'eval_measurements.csv'} is a symbolic link")
    assert changed(outside, snapshot(target)) == [] and changed(before, snapshot(tmp_path)) == []


def test_overwrite_refuses_to_delete_what_kronbench_did_not_write(tmp_path):
    trial = tmp_path.joinpath(*TRIAL)
    (trial / "notes").mkdir(parents=True)
    (trial / "notes" / "mine.txt").write_text("mine\n")
    (trial / "eval_measurements.csv").write_text("global_step,preemption_count\n")
    before = snapshot(tmp_path)
    outcome = run_main("runner", runner_argv(tmp_path, overwrite=True))
    assert_refused(outcome, "holds 'notes', which kronbench does not write")
    assert changed(before, snapshot(tmp_path)) == []


def test_overwrite_replaces_a_trial_of_its_own_files(tmp_path):
    """The reference behaviour beside the refusals: --overwrite of a real trial removes its files and reruns it."""
    first = run_main("runner", runner_argv(tmp_path))
    assert first.returncode == 0, first.stderr
    trial = tmp_path.joinpath(*TRIAL)
    (trial / "meta_data_7.json").write_text("{}")  # an earlier preemption's file: the trial's own layout
    (trial / "checkpoint.pt.tmp123").write_bytes(b"torn")  # common/atomic.py's leftover of a kill mid-write
    again = run_main("runner", runner_argv(tmp_path, overwrite=True))
    assert again.returncode == 0, again.stderr
    names = set(os.listdir(trial))
    assert "meta_data_7.json" not in names and "checkpoint.pt.tmp123" not in names and "meta_data_0.json" in names


def test_a_campaign_worker_checks_for_links_below_the_root(tmp_path):
    """A worker (possibly on another node) checks again before it writes."""
    from runner.trial import TrialConfig
    from tuning.plan import TrialSpec
    from tuning.trial import attempt

    target = precious(tmp_path)
    at = link(tmp_path, CAMPAIGN_TRIAL[:4], target)
    spec = TrialSpec(
        "nadamw", NADAMW, 0, 1, None, str(tmp_path.joinpath(*CAMPAIGN_TRIAL)), TrialConfig("mnist", rng_seed=0)
    )
    before = snapshot(target)
    result, error = attempt(spec)
    assert result is None and error.startswith(f"error: {at} is a symbolic link")
    assert changed(before, snapshot(target)) == []


def lr_space(tmp: Path, learning_rate: float, name: str = "space.json") -> str:
    point = {**json.loads(Path(NADAMW_SPACE).read_text())[0], "learning_rate": learning_rate}
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([point]))
    return str(path)


def eval_steps(trial: Path) -> list[int]:
    with open(trial / "eval_measurements.csv", newline="") as f:
        return [int(r["global_step"]) for r in csv.DictReader(f)]


def test_a_non_finite_gradient_raised_by_the_optimizer_is_a_divergence(tmp_path):
    """NAdamW raises FloatingPointError at step 14 under learning rate 1e6: the trial ends as a divergence there,
    as a non-finite loss ends it (logs kept, the meta data's record), not as a traceback."""
    argv = runner_argv(tmp_path, tuning_search_space=lr_space(tmp_path, 1e6), max_global_steps="60")
    outcome = run_main("runner", argv)
    assert outcome.returncode == 0 and "Traceback" not in outcome.stderr, outcome.stderr
    assert "trial 1: diverged at step 14 (FloatingPointError: NAdamW: non-finite gradient" in outcome.stdout
    trial = tmp_path.joinpath(*TRIAL)
    record = json.loads((trial / "meta_data_0.json").read_text())["diverged"]
    assert record["step"] == 14 and "non-finite gradient" in record["reason"]
    assert eval_steps(trial)[0] == 1 and max(eval_steps(trial)) < 14  # the evals before it are kept


@pytest.mark.slow
def test_a_campaign_counts_a_raised_divergence_as_done_and_not_reached(tmp_path):
    folder = tmp_path / "hot"
    folder.mkdir()
    (folder / "submission.py").write_text("from submissions.nadamw.submission import *  # noqa: F401,F403\n")
    lr_space(folder, 1e6, "tuning_search_space.json")
    outcome = run_main("tuning", tuning_argv(tmp_path, submissions=str(folder), max_global_steps="60"))
    assert outcome.returncode == 0 and "Traceback" not in outcome.stderr + outcome.stdout, outcome.stdout
    trial_id = "hot/study_0/mnist_pytorch/trial_1"
    entry = json.loads((tmp_path / "exp" / "c" / "manifest.json").read_text())["trials"][trial_id]
    assert entry["status"] == "done" and entry["diverged_at_step"] == 14
    result = json.loads((tmp_path / "exp" / "c" / trial_id / "trial_result.json").read_text())
    assert not result["reached_validation"] and result["diverged_at_step"] == 14


def test_other_errors_of_a_submission_are_not_divergences(tmp_path):
    """Only DIVERGENCE_ERRORS end a trial as diverged; anything else still ends the run with its traceback."""
    from runner.trial import DIVERGENCE_ERRORS

    assert DIVERGENCE_ERRORS == (FloatingPointError,)
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from submissions.nadamw.submission import *  # noqa: F401,F403\n"
        "def update_params(**kw):\n"
        "    raise RuntimeError('a bug, not a divergence')\n"
    )
    outcome = run_main("runner", runner_argv(tmp_path, submission_path=str(broken)))
    assert outcome.returncode == 1 and "RuntimeError: a bug, not a divergence" in outcome.stderr


KILLABLE = """import os
from submissions.nadamw.{module} import *  # noqa: F401,F403
from submissions.nadamw import {module} as _base


def update_params(*args, global_step, **kw):
    if str(global_step) == os.environ.get("KRONBENCH_TEST_KILL_AT"):
        os._exit(9)  # as a SIGKILL would: no row, no checkpoint, nothing closed
    return _base.update_params(*args, global_step=global_step, **kw)
"""


def killed_trial(tmp: Path, framework: str, monkeypatch, step: int = 60) -> tuple[list[str], Path]:
    """A trial of nadamw (its name, so the checkpoint's identity) killed before update ``step``: its argv and
    folder."""
    module = {"pytorch": "submission", "jax": "submission_jax"}[framework]
    path = tmp / "nadamw" / f"{module}.py"
    path.parent.mkdir()
    path.write_text(KILLABLE.format(module=module))
    argv = runner_argv(tmp, submission_path=str(path), framework=framework, max_global_steps=str(step + 20))
    monkeypatch.setenv("KRONBENCH_TEST_KILL_AT", str(step))
    assert run_main("runner", argv).returncode == 9
    monkeypatch.delenv("KRONBENCH_TEST_KILL_AT")
    return argv, tmp.joinpath(*TRIAL[:2], f"mnist_{framework}", "trial_1")


def checkpoint_evals(trial: Path, framework: str) -> list[int]:
    if framework == "jax":
        import numpy as np

        with np.load(trial / "checkpoint.npz", allow_pickle=False) as data:
            return [step for step, _ in json.loads(str(data["plain"]))["eval_results"]]
    import torch

    return [step for step, _ in torch.load(trial / "checkpoint.pt", weights_only=True)["eval_results"]]


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(text.splitlines()))


@pytest.mark.parametrize(
    "framework, damage",
    [("pytorch", "emptied"), ("pytorch", "cut_in_header"), pytest.param("jax", "emptied", marks=pytest.mark.slow)],
)
def test_eval_rows_a_damaged_log_lost_are_rebuilt_from_the_checkpoint(framework, damage, tmp_path, monkeypatch):
    argv, trial = killed_trial(tmp_path, framework, monkeypatch)
    kept = checkpoint_evals(trial, framework)
    log = trial / "eval_measurements.csv"
    original = [r for r in rows(log.read_text()) if int(r["global_step"]) in kept]
    assert kept and [int(r["global_step"]) for r in original] == kept
    log.write_text("" if damage == "emptied" else "global_step,preempt")
    outcome = run_main("runner", [*argv, "--resume_last_run"])
    assert outcome.returncode == 0, outcome.stderr
    after = rows(log.read_text())
    steps = [int(r["global_step"]) for r in after]
    assert steps[: len(kept)] == kept and steps == sorted(set(steps)) and (trial / "meta_data_1.json").exists()
    for old, new in zip(original, after, strict=False):  # the checkpoint's record, as the first run logged it
        assert new["preemption_count"] == "" and {**old, "preemption_count": ""} == new
    assert [r["preemption_count"] for r in after[len(kept) :]] == ["1"] * (len(after) - len(kept))


def test_resuming_a_finished_trial_reports_it_and_leaves_it_alone(tmp_path):
    first = run_main("runner", runner_argv(tmp_path))
    assert first.returncode == 0, first.stderr
    before = snapshot(tmp_path)
    again = run_main("runner", runner_argv(tmp_path, resume_last_run=True))
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    assert "trial 1 (finished by an earlier run; left as it was): did NOT reach" in again.stdout
    assert changed(before, snapshot(tmp_path)) == []  # no flags_1.json, meta_data_1.json or events file
    final = tmp_path.joinpath(*TRIAL, "measurements.csv")
    final.unlink()  # as a kill between the last checkpoint and the final row leaves it: this run writes the row
    again = run_main("runner", runner_argv(tmp_path, resume_last_run=True))
    assert again.returncode == 0 and "left as it was" not in again.stdout, again.stderr
    assert [r["global_step"] for r in csv.DictReader(final.read_text().splitlines())] == ["2"]


def test_resuming_a_diverged_trial_reports_its_divergence_and_leaves_it_alone(tmp_path):
    argv = runner_argv(tmp_path, tuning_search_space=lr_space(tmp_path, 1e6), max_global_steps="60")
    assert run_main("runner", argv).returncode == 0
    before = snapshot(tmp_path)
    again = run_main("runner", [*argv, "--resume_last_run"])
    assert again.returncode == 0, again.stderr
    assert "left as it was): diverged at step 14 (FloatingPointError: NAdamW: non-finite gradient" in again.stdout
    assert changed(before, snapshot(tmp_path)) == []


def fifo(tmp: Path) -> str:
    os.mkfifo(tmp / "space.fifo")
    return str(tmp / "space.fifo")


REFUSED = [
    ("cuda_on_cpu_under_jax", {"framework": "jax", "cuda_on_cpu": True}, "--cuda_on_cpu places PyTorch tensors"),
    ("unknown_jax_layout", {"framework": "jax", "jax_batch_layout": "vmap"}, "'vmap' is not one of jit, pmap"),
    ("pmap_layout_under_pytorch", {"jax_batch_layout": "pmap"}, "--jax_batch_layout lays out JAX arrays"),
    ("jax_removed_names_under_pytorch", {"jax_removed_names": True}, "--jax_removed_names restores JAX names"),
    ("space_fifo", {"tuning_search_space": fifo}, "space.fifo is not a regular file"),
    ("space_dev_zero", {"tuning_search_space": "/dev/zero"}, "/dev/zero is not a regular file"),
]


@pytest.mark.parametrize("flags, fragment", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_in_one_line(flags, fragment, tmp_path):
    flags = {k: v(tmp_path) if callable(v) else v for k, v in flags.items()}
    assert_refused(run_main("runner", runner_argv(tmp_path, **flags), timeout=60), fragment)
    assert not (tmp_path / "exp").exists()  # (a snapshot of tmp_path would block reading the FIFO)


def test_a_campaign_refuses_a_search_space_that_is_not_a_regular_file(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "submission.py").write_text("from submissions.nadamw.submission import *  # noqa: F401,F403\n")
    os.mkfifo(folder / "tuning_search_space.json")
    outcome = run_main("tuning", tuning_argv(tmp_path, submissions=str(folder)), timeout=60)
    assert_refused(outcome, "tuning_search_space.json is not a regular file")
    assert not (tmp_path / "exp").exists()


def test_a_submission_importing_its_own_repository_is_told_to_put_the_root_on_pythonpath(tmp_path):
    """As official submissions do (``from submissions.self_tuning.<name>... import``): the advice is the fix."""
    package = tmp_path / "repo" / "submissions" / "self_tuning" / "mine"
    package.mkdir(parents=True)
    (package / "helpers.py").write_text("from submissions.nadamw.submission import *  # noqa: F401,F403\n")
    (package / "submission.py").write_text("from submissions.self_tuning.mine.helpers import *  # noqa: F401,F403\n")
    argv = runner_argv(tmp_path, submission_path=str(package / "submission.py"), max_global_steps="1")
    before = snapshot(tmp_path)
    outcome = run_main("runner", argv)
    assert_refused(
        outcome,
        f"No module named 'submissions.self_tuning'; put its repository root on PYTHONPATH "
        f"(PYTHONPATH={tmp_path / 'repo'})",
    )
    assert changed(before, snapshot(tmp_path)) == []
    fixed = run_cli(*argv, env={"PYTHONPATH": os.pathsep.join([ROOT, str(tmp_path / "repo")])})
    assert fixed.returncode == 0, fixed.stderr


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkill_to_torchruns_group_kills_its_ranks_and_the_resume_is_clean(tmp_path):
    """torchrun starts each rank in a session of its own, so SIGKILL to torchrun's process group does not reach
    them: they die with torchrun itself (runner/distributed.py), and the resume continues the checkpoint."""
    argv = runner_argv(tmp_path, max_global_steps="100000", progress="off")  # survivors would train for long
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "runner"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    trial = tmp_path.joinpath(*TRIAL)
    first = subprocess.Popen(
        [*torchrun, *argv], cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (trial / "checkpoint.pt").exists():
            assert first.poll() is None and time.monotonic() < deadline, "no checkpoint"
            time.sleep(0.1)
        ranks = _children(first.pid)
        assert len(ranks) == 2 and all(os.getsid(r) != os.getsid(first.pid) for r in ranks)  # sessions of their own
        os.killpg(first.pid, signal.SIGKILL)  # torchrun's group: torchrun alone
    finally:
        first.wait()
    deadline = time.monotonic() + 10
    while any(_alive(r) for r in ranks) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [r for r in ranks if _alive(r)]
    for r in survivors:  # not left training after the test
        os.kill(r, signal.SIGKILL)
    assert not survivors, "a rank outlived torchrun"
    import torch

    killed_at = torch.load(trial / "checkpoint.pt", weights_only=True)["global_step"]
    resume = runner_argv(tmp_path, max_global_steps=str(killed_at + 30), progress="off", resume_last_run=True)
    second = subprocess.run([*torchrun, *resume], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    rows = list(csv.DictReader((trial / "eval_measurements.csv").read_text().splitlines()))
    steps = [int(r["global_step"]) for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == killed_at + 30
    assert {r["preemption_count"] for r in rows} == {"0", "1"}


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.slow
def test_under_torchrun_the_error_line_is_printed_once_by_rank_0(tmp_path):
    """Both ranks stop on the same error (decided by rank 0); only rank 0 prints it. torchrun's own report
    follows (it has no switch to silence it)."""
    trial = tmp_path.joinpath(*TRIAL)
    trial.mkdir(parents=True)
    (trial / "eval_measurements.csv").write_text("precious\n")
    before = snapshot(tmp_path)
    proc = subprocess.run(
        [*TORCHRUN, "-m", "runner", *runner_argv(tmp_path, progress="off")],
        cwd=ROOT, env={**os.environ, **ONE_THREAD}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode != 0 and errors == [
        f"error: trial directory {trial} already exists; pass --overwrite "
        "to replace it or --resume_last_run to continue it"
    ], proc.stderr
    assert changed(before, snapshot(tmp_path)) == []


@pytest.mark.slow
def test_a_campaign_trial_under_torchrun_logs_one_error_line_and_no_launcher_traceback(tmp_path):
    trial = tmp_path.joinpath(*CAMPAIGN_TRIAL)
    trial.mkdir(parents=True)
    (trial / "checkpoint.pt").write_bytes(b"not a checkpoint")
    outcome = run_main("tuning", [*tuning_argv(tmp_path), "--procs_per_trial=2"])
    assert outcome.returncode == 1, outcome.stderr
    log = (tmp_path / "exp" / "c" / "logs" / "nadamw__study_0__mnist_pytorch__trial_1.log").read_text()
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "is not a readable kronbench checkpoint" in errors[0], log
    assert "Traceback" not in log and "ChildFailedError" not in log, log
    entry = json.loads((tmp_path / "exp" / "c" / "manifest.json").read_text())["trials"][
        "nadamw/study_0/mnist_pytorch/trial_1"
    ]
    assert entry["status"] == "failed" and entry["error"].startswith(errors[0] + " (exit 2;")
