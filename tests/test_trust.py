"""What the harness guarantees around a submission: plain checkpoints, foreign optimizer state left out with a
warning, divergence ending a trial, atomic writes."""

import collections
import csv
import json
import logging
import os
from dataclasses import dataclass

import pytest
import torch

from common.atomic import atomic_open, write_json
from common.errors import UsageError
from compat import prng
from runner import checkpoint
from runner.loop import TrialConfig, train_once
from tests.cli_helpers import ROOT
from tests.fakes import SleepyWorkload, make_submission
from tuning.manifest import Manifest
from tuning.plan import TrialSpec

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

CONFIG = TrialConfig(workload_name="sleepy", max_global_steps=6, rng_seed=0, progress=False)
Hyper = collections.namedtuple("Hyper", ["lr"])


@dataclass(frozen=True)
class Settings:
    lr: float


def with_foreign_state(submission):
    """The fake SGD submission, keeping a namedtuple, a dataclass and a numpy scalar in its optimizer state (as
    official leaderboard submissions do)."""
    module, init = submission.module, submission.module.init_optimizer_state

    def init_optimizer_state(*args):
        state = init(*args)
        return {**state, "hyper": Hyper(0.1), "settings": Settings(0.1), "count": torch.tensor(3.0).numpy()[()]}

    module.init_optimizer_state = init_optimizer_state
    return submission


def diverging_at(step: int):
    """The fake SGD submission, whose parameters become NaN at ``step`` (0-based update index)."""
    submission = make_submission()
    module, update = submission.module, submission.module.update_params

    def update_params(**kw):
        state, params, model_state = update(**kw)
        if kw["global_step"] == step:
            with torch.no_grad():
                next(params.parameters()).fill_(float("nan"))
        return state, params, model_state

    module.update_params = update_params
    return submission


def test_foreign_optimizer_state_is_left_out_with_a_warning_and_resume_works(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="kronbench.runner"), pytest.raises(KeyboardInterrupt):
        train_once(
            SleepyWorkload(),
            with_foreign_state(make_submission(crash_at_step=4)),
            None,
            prng.PRNGKey(0),
            CONFIG,
            str(tmp_path),
        )
    (warning,) = [r.getMessage() for r in caplog.records]  # once, not at every checkpoint
    assert "optimizer_state['hyper'] (Hyper)" in warning and "optimizer_state['settings'] (Settings)" in warning
    blob = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # data only: no class needed to read it
    assert set(blob["optimizer_state"]) == {"optimizer", "count"} and blob["optimizer_state"]["count"] == 3.0
    assert blob["identity"] == {"submission": "sleepy", "workload": "sleepy", "rng_seed": 0, "hyperparameters": None}
    resumed = train_once(
        SleepyWorkload(), with_foreign_state(make_submission()), None, prng.PRNGKey(0), CONFIG, str(tmp_path)
    )
    assert blob["global_step"] == 4 and resumed.global_step == 6


def test_glue_submissions_checkpoint_plain_hyperparameters(tmp_path):
    """kronbench's own submissions keep their resolved hyperparameters as a dict, so nothing is left out."""
    from runner.loading import load_submission
    from submissions import glue
    from tests.coverage_workload import CoverageWorkload

    submission = load_submission(os.path.join(ROOT, "submissions", "shampoo", "submission.py"))
    workload = CoverageWorkload()
    model, _ = workload.init_model_fn(prng.PRNGKey(0))
    state = submission.module.init_optimizer_state(workload, model, None, None, None)
    dropped = []
    plain = checkpoint.to_plain(state, "optimizer_state", dropped)
    assert dropped == [] and plain["hparams"] == glue.TrainingHParams(**plain["hparams"]).__dict__


def test_resume_refuses_a_checkpoint_of_another_trial(tmp_path):
    train_once(SleepyWorkload(), make_submission(), None, prng.PRNGKey(0), CONFIG, str(tmp_path))
    other = TrialConfig(workload_name="sleepy", max_global_steps=6, rng_seed=1, progress=False)
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path) if n.endswith((".csv", ".pt", ".json"))}
    with pytest.raises(checkpoint.CheckpointError, match="rng_seed was 0, now 1.*--overwrite"):
        train_once(SleepyWorkload(), make_submission(), None, prng.PRNGKey(1), other, str(tmp_path))
    with pytest.raises(UsageError, match="hyperparameters was None"):
        train_once(SleepyWorkload(), make_submission(), Hyper(0.1), prng.PRNGKey(0), CONFIG, str(tmp_path))
    assert {n: (tmp_path / n).read_bytes() for n in before} == before


def test_divergence_ends_the_trial_at_once_and_is_recorded(tmp_path):
    config = TrialConfig(workload_name="sleepy", max_global_steps=50, rng_seed=0, progress=False)
    result = train_once(SleepyWorkload(), diverging_at(3), None, prng.PRNGKey(0), config, str(tmp_path))
    assert result.diverged_at_step == 4 and result.global_step == 4  # the 4th update made the NaN
    assert "diverged at step 4" in result.summary("t") and not result.reached_validation
    assert json.loads((tmp_path / "meta_data_0.json").read_text())["diverged"]["step"] == 4
    with open(tmp_path / "eval_measurements.csv") as f:
        assert [int(r["global_step"]) for r in csv.DictReader(f)] == [1, 2, 3]  # logs kept, no NaN eval
    blob = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert blob["global_step"] == 3  # the last checkpoint stays the last finite one
    assert all(torch.isfinite(v).all() for v in blob["model_params"].values())


def test_a_non_finite_training_loss_at_an_eval_ends_the_trial(tmp_path):
    class NanLoss(SleepyWorkload):
        def _eval_model_on_split(self, split, *args, **kwargs):
            out = super()._eval_model_on_split(split, *args, **kwargs)
            return {**out, "loss": float("nan")} if split == "eval_train" else out

    result = train_once(NanLoss(), make_submission(), None, prng.PRNGKey(0), CONFIG, str(tmp_path))
    assert result.diverged_at_step == 1 and result.global_step == 1


def test_the_manifest_records_a_diverged_trial(tmp_path):
    spec = TrialSpec("s", "s.py", 0, 1, None, str(tmp_path / "s" / "t"), TrialConfig("mnist", rng_seed=0))
    manifest = Manifest.open(str(tmp_path), {"x": 1}, [spec])
    manifest.finished(spec.id, {"diverged_at_step": 7, "reached_validation": False})
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["trials"][spec.id]["status"] == "done" and data["trials"][spec.id]["diverged_at_step"] == 7


def test_atomic_open_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "f.json"
    write_json(str(target), {"old": 1})
    with pytest.raises(RuntimeError), atomic_open(str(target)) as f:
        f.write('{"new": ')
        raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"old": 1} and os.listdir(tmp_path) == ["f.json"]
    with pytest.raises(ValueError, match="whole files"), atomic_open(str(target), "a"):
        pass
