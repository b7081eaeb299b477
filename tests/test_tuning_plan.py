"""Campaign planning: layout, per-study seeds, reproducible points, and the errors a bad campaign gets."""

import json
import os

import numpy as np
import pytest

from common import search_space as ss
from common.errors import UsageError
from tuning.plan import CampaignConfig, TrialSpec, plan, resolve_submissions, study_seed
from workloads.registry import CPU_SUITE

HALTON_SPACE = {
    "learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"},
    "one_minus_beta1": {"min": 0.02, "max": 0.2, "scaling": "log"},
    "beta2": {"feasible_points": [0.99, 0.999]},
    "weight_decay": {"min": 0.0, "max": 0.2, "scaling": "linear"},
    "warmup_factor": {"feasible_points": [0.05]},
}


def halton_submission(root, name="nadamw_halton"):
    """A user's submission folder: NAdamW's update rule with a quasi-random search space."""
    folder = root / name
    folder.mkdir()
    (folder / "submission.py").write_text("from submissions.nadamw.submission import *  # noqa: F401,F403\n")
    (folder / "tuning_search_space.json").write_text(json.dumps(HALTON_SPACE))
    return str(folder)


def config(tmp_path, **kw):
    base = dict(
        submissions=("nadamw", "shampoo"),
        workloads=("mnist", "mri_unet"),
        experiment_dir=str(tmp_path),
        experiment_name="c",
        rng_seed=7,
        num_studies=2,
        num_tuning_trials=2,
    )
    return CampaignConfig(**{**base, **kw})


def test_layout_is_algoperfs_one_folder_per_submission(tmp_path):
    specs = plan(config(tmp_path))
    assert len(specs) == 2 * 2 * 2 * 2 and len({s.id for s in specs}) == 16
    first = specs[0]
    assert first.id == "nadamw/study_0/mnist_pytorch/trial_1"
    assert first.trial_dir == os.path.join(str(tmp_path), "c", "nadamw", "study_0", "mnist_pytorch", "trial_1")
    # study-major order: the first half covers every submission and workload of study 0
    assert {(s.submission, s.config.workload_name) for s in specs[:8]} == {
        (a, b) for a in ("nadamw", "shampoo") for b in ("mnist", "mri_unet")
    } and {s.study for s in specs[:8]} == {0}
    assert {s.trial for s in specs} == {1, 2}


def test_study_seeds_derive_from_the_campaign_seed(tmp_path):
    specs = plan(config(tmp_path))
    by_study = {s.study: s.config.rng_seed for s in specs}
    assert by_study == {k: study_seed(7, k) for k in (0, 1)}
    assert by_study[0] != by_study[1] and all(0 <= v < 2**31 for v in by_study.values())
    expected = int(np.random.SeedSequence([7, 1]).generate_state(1)[0] >> 1)
    assert study_seed(7, 1) == expected
    # shared by submissions, workloads, trials
    assert {s.config.rng_seed for s in specs if s.study == 0} == {by_study[0]}


def test_same_seed_same_points_and_studies_sample_independently(tmp_path):
    folder = halton_submission(tmp_path)
    cfg = config(tmp_path, submissions=(folder,), num_tuning_trials=3)
    a, b = plan(cfg), plan(cfg)
    assert [s.hyperparameters for s in a] == [s.hyperparameters for s in b]
    study0 = [s.hyperparameters for s in a if s.study == 0 and s.config.workload_name == "mnist"]
    study1 = [s.hyperparameters for s in a if s.study == 1 and s.config.workload_name == "mnist"]
    space = ss.parse(HALTON_SPACE)
    assert study0 == space.points(3, seed=study_seed(7, 0)) and study1 == space.points(3, seed=study_seed(7, 1))
    assert study0 != study1
    # workloads of one study share its points, as AlgoPerf's search spaces are workload-agnostic
    assert study0 == [s.hyperparameters for s in a if s.study == 0 and s.config.workload_name == "mri_unet"]
    other = plan(config(tmp_path, submissions=(folder,), num_tuning_trials=3, rng_seed=8))
    assert [s.hyperparameters for s in other] != [s.hyperparameters for s in a]


def test_list_spaces_are_used_in_file_order_and_self_tuning_has_no_points(tmp_path):
    with open(os.path.join(os.path.dirname(__file__), "..", "submissions", "nadamw", "tuning_search_space.json")) as f:
        listed = json.load(f)
    specs = plan(config(tmp_path, submissions=("nadamw",), workloads=("mnist",)))
    assert [s.hyperparameters for s in specs] == listed[:2] * 2
    selfs = plan(config(tmp_path, tuning_ruleset="self", num_tuning_trials=1))
    assert len(selfs) == 2 * 2 * 2 and all(s.hyperparameters is None and s.trial == 1 for s in selfs)


def test_suite_expands_and_identity_names_what_runs(tmp_path):
    cfg = config(tmp_path, workloads=("suite",), experiment_dir=str(tmp_path / "elsewhere"))
    assert {s.config.workload_name for s in plan(cfg)} == set(CPU_SUITE)
    ident = cfg.identity()
    assert ident["workloads"] == list(CPU_SUITE) and ident["submissions"] == ["nadamw", "shampoo"]
    assert "experiment_dir" not in ident and ident["rng_seed"] == 7


def test_refinement_reaches_every_trial_and_does_not_define_the_campaign(tmp_path):
    refined = config(tmp_path, refine_time_to_target_sec=1.0)
    assert {s.config.refine_time_to_target_sec for s in plan(refined)} == {1.0}
    assert {s.config.refine_time_to_target_sec for s in plan(config(tmp_path))} == {0.0}
    assert refined.identity() == config(tmp_path).identity()  # it measures more and changes no trial


# A spec as campaigns have written it (the worker's stdin, every trial's flags_<n>.json) before TrialSpec held a
# TrialConfig: a re-run and a resumed worker must still read it.
WRITTEN_SPEC = {
    "submission": "nadamw",
    "submission_path": "/x/submissions/nadamw/submission.py",
    "workload": "mnist",
    "study": 1,
    "trial": 2,
    "seed": 1234,
    "hyperparameters": {"learning_rate": 0.001},
    "trial_dir": "/x/c/nadamw/study_1/mnist_jax/trial_2",
    "tuning_ruleset": "external",
    "max_global_steps": 5,
    "framework": "jax",
    "data_dir": "/data",
    "refine_time_to_target_sec": 0.5,
}


def test_a_written_spec_loads_into_the_runners_config_and_writes_back_unchanged(tmp_path):
    spec = TrialSpec.from_dict(json.loads(json.dumps(WRITTEN_SPEC)))
    assert spec.id == "nadamw/study_1/mnist_jax/trial_2"
    c = spec.config
    assert (c.workload_name, c.rng_seed, c.framework, c.data_dir, c.max_global_steps) == (
        "mnist",
        1234,
        "jax",
        "/data",
        5,
    )
    assert (c.tuning_ruleset, c.refine_time_to_target_sec, c.save_checkpoints, c.progress) == (
        "external",
        0.5,
        True,
        False,
    )
    assert spec.to_dict() == WRITTEN_SPEC
    planned = plan(config(tmp_path, submissions=("nadamw",), workloads=("mnist",), num_studies=1, num_tuning_trials=1))
    assert set(planned[0].to_dict()) == set(WRITTEN_SPEC)  # a planned spec is written in the same format
    with pytest.raises(TypeError):
        TrialSpec.from_dict({**WRITTEN_SPEC, "workload_name": "mnist"})  # not a spec key


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(submissions=("nope",)), "unknown submission 'nope'; use one of eshampoo, kradagrad"),
        (dict(workloads=("imagenet",)), "unknown workload 'imagenet'"),
        (dict(workloads=("mnist", "mnist")), "listed twice"),
        (dict(num_studies=0), "--num_studies=0 must be at least 1"),
        (dict(num_tuning_trials=0), "--num_tuning_trials=0 must be at least 1"),
        (dict(tuning_ruleset="self", num_tuning_trials=5), "runs one trial per study"),
        (dict(tuning_ruleset="bayes"), "unknown --tuning_ruleset='bayes'"),
        (dict(experiment_name="a/b"), "must be a plain folder name"),
        (dict(rng_seed=-1), "must lie in"),
        (dict(refine_time_to_target_sec=-1.0), "--refine_time_to_target_sec=-1.0 must be"),
        (dict(num_tuning_trials=6), "6 trials requested but the list holds 5"),
    ],
)
def test_bad_campaigns_say_what_to_fix(tmp_path, overrides, message):
    with pytest.raises((UsageError, ss.SearchSpaceError), match=message):
        plan(config(tmp_path, **overrides))


def test_submission_without_search_space_needs_self_tuning(tmp_path):
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "submission.py").write_text("")
    with pytest.raises(UsageError, match="has no tuning_search_space.json; add one or use --tuning_ruleset=self"):
        plan(config(tmp_path, submissions=(str(folder),)))
    assert resolve_submissions((str(folder),)) == [("bare", {"pytorch": str(folder / "submission.py")})]
    with pytest.raises(UsageError, match="two submissions are named 'nadamw'"):
        resolve_submissions(("nadamw", os.path.join(os.path.dirname(__file__), "..", "submissions", "nadamw")))
