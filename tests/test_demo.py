"""What a first run of ``make demo`` prints: the Makefile's own recipe (tuning, then scoring) on a tiny campaign,
and the pieces of its closing lines (the campaign's design stated once, one speedup headline in words, steps
beside seconds, a trial summary that says why training went on past its target)."""

import csv
import json
import math
import os
import re
import subprocess
import sys

import pytest

from runner.trial import TrialResult
from scoring.compare import compare
from scoring.experiments import read_experiments
from scoring.plan import CampaignPlan, read_plan
from tests.cli_helpers import ROOT
from tests.test_scoring import write_fixture

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

EASY_TARGET = 0.9  # MNIST's validation and test accuracy after a few hundred steps, so the demo's trials stop early
# Every process of the run (make's tuning and scoring, and the tuning workers) lowers MNIST's targets at start-up,
# and lengthens its budget so that a loaded machine still reaches them (a trial stops once both are passed);
# scoring reads the same class attributes, so the runner and the scorer agree.
SITECUSTOMIZE = f"""from workloads.mnist.common import MnistCommon
MnistCommon.validation_target_value = MnistCommon.test_target_value = {EASY_TARGET}
MnistCommon.max_allowed_runtime_sec = 120
"""


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _first_hit(trial_dir) -> tuple[float, int]:
    """(score, step) of the first eval at or past the target: the official scorer's rule, by hand."""
    for r in _rows(os.path.join(trial_dir, "eval_measurements.csv")):
        if float(r["validation/accuracy"]) >= EASY_TARGET:
            return float(r["score"]), int(r["global_step"])
    return math.inf, -1


def test_make_demo_on_mnist_speaks_plainly(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), ROOT, os.environ.get("PYTHONPATH", "")])}
    experiments = tmp_path / "experiments"
    proc = subprocess.run(  # the Makefile's recipe, without its install steps (-o: taken as done)
        ["make", "-s", "-o", ".venv/.data-installed", "-o", ".venv/.installed", "demo", "DEMO_WORKLOADS=mnist",
         f"EXPERIMENT_DIR={experiments}", f"PY={sys.executable}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "trial(s) where" not in out and "warning:" not in out, out  # 1 study x 1 trial was asked for
    design = "This campaign is a demonstration: 1 study x 1 trial per submission and workload"
    assert out.count(design) == 1, out
    trials = {s: str(experiments / "demo" / s / "study_0" / "mnist_pytorch" / "trial_1") for s in ("nadamw", "shampoo")}
    hits = {s: _first_hit(d) for s, d in trials.items()}
    assert all(math.isfinite(t) for t, _ in hits.values()), hits  # the easy target is reached by both

    lines = out.splitlines()
    for s in hits:  # each trial's summary says why it ran on past its (strict) step to target, if it did
        line = next(line for line in lines if line.startswith(f"{s}/study_0/mnist_pytorch/trial_1: reached"))
        m = re.search(r"at step (\d+), .* \(ran (\d+) steps", line)
        assert m and ("; went on" in line) == (int(m[2]) > int(m[1])), line
    header = lines.index(
        "Time to target (median over studies: submission seconds on this machine, and steps; - = not reached):"
    )
    mnist = next(line for line in lines[header:] if line.startswith("mnist "))
    cells = [c.strip() for c in mnist.split("  ") if c.strip()]
    assert cells == ["mnist", f"accuracy >= {EASY_TARGET:g}"] + [f"{t:.2f} s, {n} steps" for t, n in hits.values()]

    speedup = hits["nadamw"][0] / hits["shampoo"][0]  # kronbench's: t_base / t_sub, over the one workload
    headlines = [line for line in lines if "reached the targets" in line or "no speedup" in line]
    assert len(headlines) == 1, out  # one line, in words (Shampoo's steps cost ~3x NAdamW's here: far from 1.00x)
    m = re.fullmatch(
        r"shampoo reached the targets (\d+\.\d\d)x (faster|slower) than nadamw \(geometric mean over 1 workload\)",
        headlines[0],
    )
    assert m and (m[2] == "faster") == (speedup > 1) and float(m[1]) == round(max(speedup, 1 / speedup), 2), out
    report = (experiments / "demo_report" / "report.md").read_text()
    assert (
        "a demonstration: 1 study x 1 trial" in report
        and "Targets: kronbench's own for its workloads (mnist)" in report
    )
    assert "official: t_submission / t_baseline" in report and "compute_speedups" in report


def _plan_root(tmp_path, identity):
    root = write_fixture(
        tmp_path / "c", {("a", "mnist"): [{1: [(10, 9.0, 0.98)]}], ("b", "mnist"): [{1: [(10, 4.0, 0.98)]}]}
    )
    (root / "manifest.json").write_text(json.dumps({"identity": identity, "trials": {}}))
    return root


def test_a_planned_demonstration_is_stated_once_and_a_short_campaign_still_warns(tmp_path):
    root = _plan_root(tmp_path, {"num_studies": 1, "num_tuning_trials": 1, "tuning_ruleset": "external"})
    plan = read_plan(str(root))
    assert plan == CampaignPlan(1, 1, "external")
    logs = read_experiments(str(root))[0]
    c = compare(logs, plan=plan)
    assert c.warnings == [] and c.design.startswith("a demonstration: 1 study x 1 trial per submission and workload")
    assert "AlgoPerf scores 3 studies x 5 trials" in c.design
    assert compare(logs).warnings == [f"{s}/study_0/mnist: 1 trial(s) where external tuning expects 5" for s in "ab"]
    planned_two = compare(logs, plan=CampaignPlan(1, 2, "external"))  # one trial missing from each study
    assert planned_two.warnings == [
        f"{s}/study_0/mnist: 1 trial(s) where the campaign planned 2 and external tuning expects 5" for s in "ab"
    ]
    with pytest.raises(Exception, match="--strict: a/study_0/mnist: 1 trial\\(s\\) where external tuning expects 5"):
        compare(logs, plan=plan, strict=True)  # --strict holds the campaign to AlgoPerf's rules
    assert compare(logs, plan=CampaignPlan(3, 5, "external")).design is None  # AlgoPerf's size: nothing to state
    assert compare(logs, plan=CampaignPlan(1, 1, "self"), self_tuning=False).warnings != []  # another ruleset's plan


@pytest.mark.parametrize(
    "manifest", ["{not json", json.dumps([1]), json.dumps({"identity": {"num_studies": 0, "num_tuning_trials": 1,
                                                                        "tuning_ruleset": "external"}})]
)  # fmt: skip
def test_an_unreadable_manifest_leaves_algoperfs_expectations(tmp_path, manifest):
    root = _plan_root(tmp_path, {})
    (root / "manifest.json").write_text(manifest)
    assert read_plan(str(root)) is None


def test_a_linked_manifest_is_not_followed(tmp_path):
    root = _plan_root(tmp_path, {})
    outside = tmp_path / "elsewhere.json"
    outside.write_text(
        json.dumps({"identity": {"num_studies": 1, "num_tuning_trials": 1, "tuning_ruleset": "external"}})
    )
    (root / "manifest.json").unlink()
    (root / "manifest.json").symlink_to(outside)
    assert read_plan(str(root)) is None


def _result(evals, step_to_target, global_step, reached_test):
    """A trial on an accuracy target of 0.97 (validation and test) with the given evals (step, val, test)."""
    return TrialResult(
        trial_dir=None, global_step=global_step, submission_time=10.0, budget_sec=18.0, metric="accuracy",
        target=0.97, reached_validation=step_to_target is not None, reached_test=reached_test,
        step_to_target=step_to_target, time_to_target=None if step_to_target is None else 6.0,
        last_validation=evals[-1][1], test_target=0.97,
        eval_results=[(s, {"validation/accuracy": v, "test/accuracy": t}) for s, v, t in evals],
    )  # fmt: skip


def test_the_summary_says_why_training_went_on_past_the_target():
    equal_test = _result([(2876, 0.9712, 0.97), (3196, 0.9701, 0.9690)], 2876, 3196, reached_test=False)
    assert equal_test.summary("t").endswith(
        "(ran 3196 steps, 10.0 s submission time; last 0.9701; went on: the test accuracy target 0.97 was equalled "
        "at step 2876, not passed, and the runner stops only once both targets are passed)"
    )
    later_test = _result([(100, 0.98, 0.96), (200, 0.98, 0.975)], 100, 200, reached_test=True)
    assert "; went on until the test accuracy target 0.97 was passed too: the runner stops only on both)" in (
        later_test.summary("t")
    )
    below_test = _result([(100, 0.98, 0.96), (200, 0.98, 0.965)], 100, 200, reached_test=False)
    assert "; went on: the test accuracy target 0.97 was not passed, and the runner stops only once both are)" in (
        below_test.summary("t")
    )
    both_at_once = _result([(50, 0.9, 0.9), (100, 0.98, 0.98)], 100, 100, reached_test=True)
    assert both_at_once.summary("t").endswith("(ran 100 steps, 10.0 s submission time; last 0.98)")
    equal_validation = _result([(50, 0.97, 0.97), (100, 0.98, 0.98)], 100, 100, reached_test=True)
    assert "; validation accuracy equalled the target at step 50: scoring counts that eval, the runner stops only " \
        "past the target)" in equal_validation.summary("t")  # fmt: skip
    never = _result([(50, 0.97, 0.9), (100, 0.96, 0.9)], None, 100, reached_test=False)
    assert never.summary("t").startswith("t: did NOT reach") and "equalled the target at step 50" in never.summary("t")
