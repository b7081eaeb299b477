"""Campaigns across frameworks: ``--framework=jax`` and ``both`` plan paired trials (same seed, same point) from
each framework's submission file and one shared search space, in AlgoPerf's layout; the manifest records the
framework, so a changed --framework under the same name is refused. No JAX trial runs here (planning only)."""

import json
import os

import pytest

from common import checks
from common.errors import UsageError
from tests.test_tuning_plan import HALTON_SPACE, config
from tuning.manifest import Manifest
from tuning.plan import TrialSpec, plan, resolve_submissions, study_seed


@pytest.fixture(autouse=True)
def jax_runs(monkeypatch):
    """Plan as if the runner runs JAX trials (the framework check is the runner's to lift)."""
    monkeypatch.setattr(checks, "SUPPORTED_FRAMEWORKS", checks.FRAMEWORKS)


def two_framework_submission(root, name="halton2", files=("submission.py", "submission_jax.py")):
    folder = root / name
    folder.mkdir()
    for f in files:
        (folder / f).write_text("")  # never imported: planning only reads where the files are
    (folder / "tuning_search_space.json").write_text(json.dumps(HALTON_SPACE))
    return folder


def test_both_pairs_every_trial_across_frameworks(tmp_path):
    folder = two_framework_submission(tmp_path)
    cfg = config(tmp_path, submissions=(str(folder),), workloads=("mnist",), framework="both", num_tuning_trials=3)
    specs = plan(cfg)
    assert len(specs) == 2 * 3 * 2  # studies x trials x frameworks
    assert [s.id for s in specs[:4]] == [
        "halton2/study_0/mnist_pytorch/trial_1",
        "halton2/study_0/mnist_jax/trial_1",  # a trial's twin right after it
        "halton2/study_0/mnist_pytorch/trial_2",
        "halton2/study_0/mnist_jax/trial_2",
    ]
    assert specs[1].trial_dir == os.path.join(str(tmp_path), "c", "halton2", "study_0", "mnist_jax", "trial_1")
    paths = {s.config.framework: s.submission_path for s in specs}
    assert paths == {"pytorch": str(folder / "submission.py"), "jax": str(folder / "submission_jax.py")}
    torch = {(s.study, s.trial): s for s in specs if s.config.framework == "pytorch"}
    jax = {(s.study, s.trial): s for s in specs if s.config.framework == "jax"}
    assert torch.keys() == jax.keys()
    for key, t in torch.items():  # paired: same seed and point in both frameworks
        assert (jax[key].config.rng_seed, jax[key].hyperparameters) == (t.config.rng_seed, t.hyperparameters)
        assert t.config.rng_seed == study_seed(7, key[0])
    assert len({str(t.hyperparameters) for t in torch.values()}) == 6  # 3 points in each of 2 studies
    # the pytorch half is exactly the single-framework plan
    single = plan(config(tmp_path, submissions=(str(folder),), workloads=("mnist",), num_tuning_trials=3))
    assert [s for s in specs if s.config.framework == "pytorch"] == single
    assert TrialSpec.from_dict(specs[1].to_dict()) == specs[1]  # what a worker receives keeps the framework


def test_jax_alone_uses_the_jax_file_and_the_same_points(tmp_path):
    folder = two_framework_submission(tmp_path)
    jax = plan(config(tmp_path, submissions=(str(folder),), framework="jax"))
    torch = plan(config(tmp_path, submissions=(str(folder),)))
    assert [s.id for s in jax] == [s.id.replace("_pytorch/", "_jax/") for s in torch]
    assert {s.submission_path for s in jax} == {str(folder / "submission_jax.py")}
    assert [(s.config.rng_seed, s.hyperparameters) for s in jax] == [
        (s.config.rng_seed, s.hyperparameters) for s in torch
    ]


def test_a_missing_framework_file_is_named(tmp_path):
    torch_only = two_framework_submission(tmp_path, "torch_only", files=("submission.py",))
    jax_only = two_framework_submission(tmp_path, "jax_only", files=("submission_jax.py",))
    missing = torch_only / "submission_jax.py"
    for framework in ("jax", "both"):
        with pytest.raises(UsageError) as e:
            plan(config(tmp_path, submissions=(str(torch_only),), framework=framework))
        assert str(e.value) == (
            f"submission torch_only has no jax file: {missing} is missing; add it or run with --framework=pytorch"
        )
    with pytest.raises(UsageError, match=f"{jax_only / 'submission.py'} is missing; .* --framework=jax$"):
        plan(config(tmp_path, submissions=(str(jax_only),)))
    assert resolve_submissions((str(jax_only),), ("jax",)) == [
        ("jax_only", {"jax": str(jax_only / "submission_jax.py")})
    ]


def test_one_file_serves_one_framework_only(tmp_path):
    folder = two_framework_submission(tmp_path)
    path = str(folder / "submission_jax.py")
    assert resolve_submissions((path,), ("jax",)) == [("halton2", {"jax": path})]
    with pytest.raises(UsageError, match="is one file but --framework=both needs one per framework; pass the folder"):
        plan(config(tmp_path, submissions=(path,), framework="both"))


def test_unknown_framework_and_unknown_submission_say_what_to_use(tmp_path):
    with pytest.raises(UsageError, match=r"unknown --framework='tf'; use one of pytorch, jax, both"):
        config(tmp_path, framework="tf")
    with pytest.raises(UsageError, match="or a folder holding submission.py or submission_jax.py$"):
        plan(config(tmp_path, submissions=("nope",)))


def test_the_manifest_records_the_framework_and_refuses_a_change(tmp_path):
    folder = two_framework_submission(tmp_path)
    torch_cfg = config(tmp_path, submissions=(str(folder),), workloads=("mnist",))
    both_cfg = config(tmp_path, submissions=(str(folder),), workloads=("mnist",), framework="both")
    assert torch_cfg.identity()["framework"] == "pytorch" and both_cfg.identity()["framework"] == "both"
    os.makedirs(both_cfg.root)
    manifest = Manifest.open(both_cfg.root, both_cfg.identity(), plan(both_cfg))
    entry = manifest.data["trials"]["halton2/study_1/mnist_jax/trial_2"]
    assert entry["framework"] == "jax" and entry["status"] == "pending"
    assert manifest.data["identity"]["framework"] == "both"
    with pytest.raises(UsageError) as e:
        Manifest.open(torch_cfg.root, torch_cfg.identity(), plan(torch_cfg))
    assert "holds a different campaign (framework was 'both', now 'pytorch'); repeat its flags" in str(e.value)
    Manifest.open(both_cfg.root, both_cfg.identity(), plan(both_cfg))  # the same flags continue it


class ScriptedExecutor:
    """Stands in for the trainer (JAX trials cannot run here): writes each trial's eval log as the runner would,
    first reaching the mnist target (accuracy >= 0.97) at SECONDS[(submission, framework)], step = 10 x seconds."""

    SECONDS = {("fast", "pytorch"): 12.0, ("fast", "jax"): 9.0, ("slow", "pytorch"): 30.0, ("slow", "jax"): 20.0}

    def run(self, specs, on_start):
        from tuning.executors import Outcome

        for spec in specs:
            on_start(spec)
            t = self.SECONDS[(spec.submission, spec.config.framework)]
            os.makedirs(spec.trial_dir)
            with open(os.path.join(spec.trial_dir, "eval_measurements.csv"), "w") as f:
                f.write(f"global_step,score,validation/accuracy\n10,1.0,0.5\n{int(10 * t)},{t},0.98\n")
            yield Outcome(spec, {"summary": f"{spec.id}: scripted", "time_to_target": t})


def test_a_both_frameworks_campaign_scores_with_both_framework_entries(tmp_path):
    """2 submissions x 2 frameworks x 1 workload through the real plan, manifest and layout, then scoring."""
    from scoring.compare import compare
    from scoring.experiments import read_experiments
    from scoring.frameworks import framework_rows
    from scoring.targets import target_of
    from tuning.campaign import run_campaign

    folders = [str(two_framework_submission(tmp_path, name)) for name in ("fast", "slow")]
    cfg = config(tmp_path, submissions=tuple(folders), workloads=("mnist",), framework="both", num_studies=1,
                 num_tuning_trials=1)  # fmt: skip
    summary = run_campaign(cfg, ScriptedExecutor(), progress=False)
    assert (summary.total, summary.done, summary.failures) == (4, 4, ())
    with open(os.path.join(cfg.root, "manifest.json")) as f:
        trials = json.load(f)["trials"]
    assert sorted(trials) == [f"{s}/study_0/mnist_{f}/trial_1" for s in ("fast", "slow") for f in ("jax", "pytorch")]
    assert {(t["framework"], t["status"]) for t in trials.values()} == {("jax", "done"), ("pytorch", "done")}
    logs, warnings, skipped = read_experiments(cfg.root, lambda w, f: target_of(w, f).column)
    c = compare(logs, warnings=warnings, skipped=skipped)
    assert c.workloads == ["mnist_jax", "mnist_pytorch"]
    assert {(r.submission, r.workload): (r.time, r.step) for r in c.rows} == {
        ("fast", "mnist_jax"): (9.0, 90),
        ("fast", "mnist_pytorch"): (12.0, 120),
        ("slow", "mnist_jax"): (20.0, 200),
        ("slow", "mnist_pytorch"): (30.0, 300),
    }
    assert [(r.submission, r.ratio("jax")) for r in framework_rows(c.rows, c.entries)] == [
        ("fast", 0.75),
        ("slow", 20.0 / 30.0),
    ]
    assert list(c.ratios["slow"]) == [20.0 / 9.0, 2.5]  # each framework's entry against its own best
