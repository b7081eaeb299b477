"""Campaigns end to end: the local executor (worker subprocesses), a local Ray cluster, resuming after SIGKILL,
retrying failures, and refusing what would mix two campaigns."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.cli_helpers import ROOT, run_cli
from tests.test_tuning_plan import config, halton_submission
from tuning.executors import _last_error_line, cpu_sets
from tuning.plan import plan

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

TRIAL_FILES = {"hparams.json", "flags_0.json", "meta_data_0.json", "measurements.csv", "eval_measurements.csv"}


def campaign_args(tmp_path, submissions, name, *extra):
    return [
        f"--submissions={submissions}",
        "--workloads=mnist,mri_unet",
        "--num_studies=2",
        "--num_tuning_trials=2",
        f"--experiment_dir={tmp_path}",
        f"--experiment_name={name}",
        "--max_global_steps=3",
        "--workers=2",
        *extra,
    ]


def manifest(root):
    with open(os.path.join(root, "manifest.json")) as f:
        return json.load(f)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def local_campaign(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("campaign")
    folder = halton_submission(tmp)
    args = campaign_args(tmp, f"{folder},shampoo", "local", "--rng_seed=3")
    proc = run_cli(*args, module="tuning")
    assert proc.returncode == 0, proc.stderr
    return tmp, folder, args, proc


def test_local_campaign_runs_every_trial_once_in_algoperfs_layout(local_campaign):
    tmp, folder, _, proc = local_campaign
    root = tmp / "local"
    assert "16/16 trials finished (16 in this run)" in proc.stdout
    specs = plan(config(tmp, submissions=(folder, "shampoo"), experiment_name="local", rng_seed=3, max_global_steps=3))
    entries = manifest(root)["trials"]
    assert set(entries) == {s.id for s in specs}
    for spec in specs:
        entry = entries[spec.id]
        assert entry["status"] == "done" and entry["attempts"] == 1
        trial = root / spec.id
        assert TRIAL_FILES - {"hparams.json"} <= set(os.listdir(trial)) and (trial / "trial_result.json").exists()
        assert json.loads((trial / "meta_data_0.json").read_text())["rng_seed"] == spec.config.rng_seed
        assert json.loads((trial / "hparams.json").read_text()) == pytest.approx(spec.hyperparameters)
        evals = rows(trial / "eval_measurements.csv")
        assert [int(r["global_step"]) for r in evals] == [1, 3]
        assert float(evals[-1]["validation/" + entry["result"]["metric"]]) == entry["result"]["last_validation"]


def test_rerunning_a_finished_campaign_runs_nothing(local_campaign):
    tmp, _, args, _ = local_campaign
    root = tmp / "local"
    before = {p: os.stat(os.path.join(d, p)).st_mtime_ns for d, _, files in os.walk(root / "shampoo") for p in files}
    args = [a for a in args if not a.startswith("--rng_seed")]  # the campaign's own seed is reused
    proc = run_cli(*args, module="tuning")
    assert proc.returncode == 0, proc.stderr
    assert "with its --rng_seed=3" in proc.stdout and "16/16 trials finished (0 in this run)" in proc.stdout
    after = {p: os.stat(os.path.join(d, p)).st_mtime_ns for d, _, files in os.walk(root / "shampoo") for p in files}
    assert after == before


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
def test_ray_campaign_on_a_local_cluster_matches_the_local_executor(local_campaign, tmp_path):
    tmp, folder, _, _ = local_campaign
    args = campaign_args(tmp, f"{folder},shampoo", "ray", "--rng_seed=3", "--executor=ray", "--cpus_per_trial=1")
    proc = run_cli(*args, module="tuning")
    assert proc.returncode == 0, proc.stderr
    assert "16/16 trials finished (16 in this run)" in proc.stdout
    local, ray = manifest(tmp / "local")["trials"], manifest(tmp / "ray")["trials"]
    assert set(local) == set(ray)
    for trial_id, entry in ray.items():  # same seeds, points and thread count: the same numbers
        assert entry["status"] == "done" and entry["attempts"] == 1
        assert entry["hyperparameters"] == local[trial_id]["hyperparameters"]
        assert entry["result"]["last_validation"] == pytest.approx(local[trial_id]["result"]["last_validation"])


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
def test_sigkill_at_a_random_point_then_rerun_finishes_every_trial_exactly_once(tmp_path):
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    args = [
        "--submissions=nadamw,shampoo",
        "--workloads=mnist",
        "--num_studies=2",
        "--num_tuning_trials=2",
        f"--experiment_dir={tmp_path}",
        "--experiment_name=k",
        "--max_global_steps=300",
        "--workers=2",
        "--rng_seed=0",
    ]
    root = tmp_path / "k"
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "tuning", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not (root / "manifest.json").exists() or not _count(root, "running"):
        assert coordinator.poll() is None and time.monotonic() < deadline, "the campaign never started a trial"
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 8.0))
    coordinator.send_signal(signal.SIGKILL)
    coordinator.communicate()
    assert _workers_of(coordinator.pid, wait=5.0) == [], f"workers outlived their coordinator (seed {seed})"

    finished_before = {t: _snapshot(root / t) for t, e in manifest(root)["trials"].items() if e["status"] == "done"}
    committed = {t for t in manifest(root)["trials"] if (root / t / "trial_result.json").exists()}
    again = run_cli(*args, module="tuning")
    assert again.returncode == 0, f"seed {seed}: {again.stderr}"
    final = manifest(root)["trials"]
    assert len(final) == 8 and all(e["status"] == "done" for e in final.values()), f"seed {seed}"
    for trial_id, entry in final.items():
        trial = root / trial_id
        steps = [int(r["global_step"]) for r in rows(trial / "eval_measurements.csv")]
        assert steps == sorted(set(steps)) and steps[-1] == entry["result"]["global_step"], f"seed {seed}"
        scores = [r for r in rows(trial / "measurements.csv") if r.get("score")]
        assert len(scores) == 1, f"seed {seed}: {trial_id} logged its final score {len(scores)} times"
        if trial_id in finished_before:  # not run again: same files, same bytes, one attempt
            assert _snapshot(trial) == finished_before[trial_id], f"seed {seed}: {trial_id} ran again"
            assert entry["attempts"] == 1
        elif trial_id in committed:  # committed just before the kill, recorded by the re-run without running it
            assert entry.get("recovered") and "meta_data_1.json" not in os.listdir(trial)
    resumed = [t for t in final if "meta_data_1.json" in os.listdir(root / t)]
    for trial_id in resumed:  # continued from its checkpoint: rows of the first attempt, then of the second
        counts = [int(r["preemption_count"]) for r in rows(root / trial_id / "eval_measurements.csv")]
        assert counts == sorted(counts) and set(counts) <= {0, 1}, f"seed {seed}: {trial_id}"
    print(f"kill seed {seed}: {len(finished_before)} finished, {len(committed)} committed, {len(resumed)} resumed")


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
def test_a_failing_trial_is_recorded_and_retried_by_the_next_run(tmp_path):
    folder = tmp_path / "flaky"
    folder.mkdir()
    (folder / "submission.py").write_text(
        "from submissions.nadamw.submission import *  # noqa: F401,F403\n"
        "from submissions.nadamw import submission as _base\n\n"
        "def update_params(*args, global_step, **kw):\n"
        "    if global_step == 1:\n"
        "        raise RuntimeError('update failed at step 1')\n"
        "    return _base.update_params(*args, global_step=global_step, **kw)\n"
    )
    (folder / "tuning_search_space.json").write_text(json.dumps([{"learning_rate": 1e-3}]))
    args = [
        f"--submissions={folder}",
        "--workloads=mnist",
        f"--experiment_dir={tmp_path}",
        "--experiment_name=f",
        "--max_global_steps=3",
        "--rng_seed=0",
        "--tuning_ruleset=self",
    ]
    proc = run_cli(*args, module="tuning")
    assert proc.returncode == 1
    assert "0/1 trials finished (0 in this run); 1 failed, first flaky/study_0/mnist_pytorch/trial_1: " in proc.stdout
    assert "RuntimeError: update failed at step 1" in proc.stdout
    assert manifest(tmp_path / "f")["trials"]["flaky/study_0/mnist_pytorch/trial_1"]["status"] == "failed"
    (folder / "submission.py").write_text("from submissions.nadamw.submission import *  # noqa: F401,F403\n")
    proc = run_cli(*args, module="tuning")
    assert proc.returncode == 0, proc.stderr
    entry = manifest(tmp_path / "f")["trials"]["flaky/study_0/mnist_pytorch/trial_1"]
    assert entry["status"] == "done" and entry["attempts"] == 2 and "error" not in entry


def test_a_different_campaign_under_the_same_name_is_refused(local_campaign):
    tmp, folder, args, _ = local_campaign
    changed = [a.replace("--num_studies=2", "--num_studies=1") for a in args]  # more studies continue it
    proc = run_cli(*changed, module="tuning")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {tmp / 'local'} holds a different campaign (num_studies was 2, now 1); "
        "repeat its flags to continue it or pick a new --experiment_name"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workloads=mnist"], "missing --submissions"),
        (["--submissions=nadamw", "--workloads=cifar99"], "unknown workload 'cifar99'"),
        (["--submissions=nadamw", "--workloads=mnist", "--workers=0"], "--workers=0 must be at least 1"),
    ],
)
def test_bad_flags_get_one_line_and_write_nothing(tmp_path, args, message):
    proc = run_cli(*args, f"--experiment_dir={tmp_path}", "--experiment_name=x", "--rng_seed=0", module="tuning")
    assert proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x" / "manifest.json").exists()


def test_a_second_coordinator_is_kept_out(tmp_path):
    from common.locks import exclusive_dir
    from tuning.campaign import LOCK

    root = tmp_path / "busy"
    root.mkdir()
    with exclusive_dir(str(root), LOCK):
        proc = run_cli(
            "--submissions=nadamw",
            "--workloads=mnist",
            f"--experiment_dir={tmp_path}",
            "--experiment_name=busy",
            "--rng_seed=0",
            module="tuning",
        )
    assert proc.returncode == 2
    assert f"campaign {root} is already running (pid {os.getpid()} on" in proc.stderr


def test_cores_are_split_between_workers_only_when_they_fit():
    assert cpu_sets(2, 1, 2) == [[0], [1]]
    assert cpu_sets(2, 2, 8) == [[0, 1], [2, 3]]
    assert cpu_sets(3, 1, 2) is None


def test_the_last_attempts_error_line_is_reported(tmp_path):
    log = tmp_path / "t.log"
    log.write_text(
        "=== attempt started 1\nerror: old problem\n=== attempt started 2\nTraceback\n  File x\nValueError: new\n"
    )
    assert _last_error_line(str(log)) == "ValueError: new"
    log.write_text("=== attempt started 1\nerror: data missing; install it\n")
    assert _last_error_line(str(log)) == "error: data missing; install it"


def _count(root, status):
    try:
        return sum(e["status"] == status for e in manifest(root)["trials"].values())
    except (json.JSONDecodeError, FileNotFoundError):
        return 0


def _workers_of(parent_pid, wait):
    """Live processes started by ``parent_pid``'s executor (they carry its pid in their environment)."""
    mark = f"KRONBENCH_PARENT_PID={parent_pid}".encode()
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if mark in f.read().split(b"\0"):
                        alive.append(int(pid))
            except OSError:
                continue
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _snapshot(trial):
    return {name: (trial / name).read_bytes() for name in sorted(os.listdir(trial)) if name != ".trial.lock"}


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
def test_ray_executor_on_an_existing_cluster_and_its_resource_check(tmp_path):
    """``ray start --head --block`` stands in for a cluster; terminating it stops the processes it started."""
    import re
    import secrets

    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))  # Ray >= 2.59 wants a token
    head = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "ray"), "start", "--head", "--block", "--port=0",
         "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        address = None
        for line in head.stdout:
            match = re.search(r"ray start --address='([^']+)'", line)
            if match:
                address = match.group(1)
                break
        assert address, "ray start printed no address"
        args = [
            "--submissions=nadamw",
            "--workloads=mnist",
            "--num_tuning_trials=2",
            f"--experiment_dir={tmp_path}",
            "--max_global_steps=3",
            "--rng_seed=1",
            "--executor=ray",
            f"--ray_address={address}",
        ]
        proc = run_cli(*args, "--experiment_name=ok", "--workers=2", module="tuning", env=env)
        assert proc.returncode == 0, proc.stderr
        assert "2/2 trials finished (2 in this run)" in proc.stdout
        proc = run_cli(*args, "--experiment_name=gpu", "--gpus_per_trial=1", module="tuning", env=env)
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines()[-1] == (
            f"error: the Ray cluster at {address} has 0 GPUs but --gpus_per_trial=1; lower it or add nodes"
        )
        assert manifest(tmp_path / "gpu")["trials"]["nadamw/study_0/mnist_pytorch/trial_1"]["attempts"] == 0
    finally:
        head.terminate()
        head.wait(timeout=60)
    # the stopped cluster is still named in /tmp/ray/ray_current_cluster; a local campaign must not try to join it
    proc = run_cli(*args[:-1], "--experiment_name=after", module="tuning", timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_missing_data_stops_the_campaign_before_anything_is_written(tmp_path):
    from tuning.campaign import run_campaign
    from workloads.registry import WorkloadError

    def preflight(name):
        raise WorkloadError(f"{name} data not found; run `make data`")

    cfg = config(tmp_path, submissions=("nadamw",), workloads=("mnist",))
    with pytest.raises(WorkloadError, match="mnist data not found; run `make data`"):
        run_campaign(cfg, executor=None, preflight=preflight)
    assert list(tmp_path.iterdir()) == []


def test_a_changed_search_space_cannot_rewrite_a_trial_that_ran(tmp_path):
    from dataclasses import replace

    from common.errors import UsageError
    from tuning.manifest import Manifest

    cfg = config(tmp_path, submissions=("nadamw",), workloads=("mnist",), num_studies=1, num_tuning_trials=1)
    specs = plan(cfg)
    os.makedirs(cfg.root)
    Manifest.open(cfg.root, cfg.identity(), specs).started(specs[0].id)
    Manifest.open(cfg.root, cfg.identity(), specs)  # the same plan opens again
    edited = [replace(specs[0], hyperparameters={**specs[0].hyperparameters, "learning_rate": 0.5})]
    with pytest.raises(UsageError, match=r"trial nadamw/study_0/mnist_pytorch/trial_1 in .* ran with .* but is now"):
        Manifest.open(cfg.root, cfg.identity(), edited)
    more = replace(cfg, num_studies=3)  # more studies continue it: the first study's plan is unchanged
    grown = Manifest.open(cfg.root, more.identity(), plan(more))
    assert plan(more)[0] == specs[0] and grown.data["identity"]["num_studies"] == 3
    assert grown.data["trials"][specs[0].id]["status"] == "running" and len(grown.data["trials"]) == 3
    with pytest.raises(UsageError, match=r"num_studies was 3, now 1"):
        Manifest.open(cfg.root, cfg.identity(), specs)
