"""Scoring reads defensively: every malformed eval_measurements.csv is one line and exit code 2 before any output
is written (or, with --lenient, a skipped trial with a warning); one submission in two frameworks is scored per
framework; a diverged trial, or a non-finite metric, never reaches a target."""

import hashlib
import json
import math
import os

import numpy as np
import pytest

from scoring import scores
from scoring.compare import compare
from scoring.experiments import read_experiments
from scoring.targets import Target, target_of
from tests.cli_helpers import run_cli

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

GOOD = "global_step,score,validation/accuracy\n100,5.0,0.5\n200,10.0,0.98\n"
BAD = {
    "empty": (b"", "is empty"),
    "header only": (b"global_step,score,validation/accuracy\n", "has a header but no rows"),
    "no metric column": (b"global_step,score,validation/loss\n1,1.0,0.5\n", "has no metric column validation/accuracy"),
    "no time column": (b"global_step,validation/accuracy\n1,0.5\n", "has no time column score"),
    "no step column": (b"score,validation/accuracy\n1.0,0.5\n", "has no step column global_step"),
    "non-numeric step": (b"global_step,score,validation/accuracy\n1,1.0,0.5\nten,2.0,0.6\n",
                         "has a non-numeric global_step 'ten' at line 3"),
    "non-numeric time": (b"global_step,score,validation/accuracy\n1,,0.5\n", "has a non-numeric score '' at line 2"),
    "non-numeric metric": (b"global_step,score,validation/accuracy\n1,1.0,high\n",
                           "has a non-numeric validation/accuracy 'high' at line 2"),
    "not UTF-8": ("global_step,score,validation/accuracy\n1,1.0,0.5 \u00e9\n".encode("latin-1"), "is not UTF-8 text"),
    "steps backwards": (b"global_step,score,validation/accuracy\n10,1.0,0.5\n5,2.0,0.6\n",
                        "has steps going backwards at line 3 (10 then 5)"),
    "times backwards": (b"global_step,score,validation/accuracy\n10,2.0,0.5\n20,1.0,0.6\n",
                        "has times going backwards at line 3 (2 then 1)"),
    "ragged row": (b"global_step,score,validation/accuracy\n10,2.0\n", "has 2 fields at line 2 where its header has 3"),
    "infinite time": (b"global_step,score,validation/accuracy\n10,inf,0.5\n", "has a non-finite value among its times"),
}  # fmt: skip


def trial(root, submission="a", study=0, workload="mnist", framework="pytorch", n=1, text=GOOD):
    d = root / submission / f"study_{study}" / f"{workload}_{framework}" / f"trial_{n}"
    d.mkdir(parents=True)
    (d / "eval_measurements.csv").write_bytes(text if isinstance(text, bytes) else text.encode())
    return d


def snapshot(root) -> dict[str, str]:
    return {
        os.path.relpath(os.path.join(d, f), root): hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
        for d, _, files in os.walk(root)
        for f in files
    }


def score(tmp_path, *flags):
    return run_cli(f"--submission_directory={tmp_path / 'exp'}", f"--output_dir={tmp_path / 'out'}", *flags,
                   module="scoring")  # fmt: skip


@pytest.fixture
def bad_trees(tmp_path):
    """One tree per malformed log, each beside a good trial, so --lenient has something left to score."""
    trees = {}
    for name, (content, _) in BAD.items():
        root = tmp_path / name.replace(" ", "_") / "exp"
        trial(root, n=1)
        trees[name] = trial(root, n=2, text=content).parent.parent.parent.parent.parent
    return trees


CLI_DEFAULT = ("empty", "no metric column", "not UTF-8", "steps backwards")  # the rest (about 5 s each) are slow


@pytest.mark.parametrize("name", [n if n in CLI_DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in BAD])
def test_a_bad_log_is_one_line_before_any_output(bad_trees, name):
    base = bad_trees[name]
    before = snapshot(base)
    proc = score(base)
    path = base / "exp" / "a" / "study_0" / "mnist_pytorch" / "trial_2" / "eval_measurements.csv"
    expected = f"error: {path} {BAD[name][1]}; repair or remove it, or pass --lenient to skip it"
    assert proc.returncode == 2 and proc.stderr.strip() == expected and "Traceback" not in proc.stderr
    assert not (base / "out").exists() and snapshot(base) == before


def test_lenient_skips_each_bad_log_with_a_warning_and_reports_it(bad_trees):
    for name, base in list(bad_trees.items())[1:3]:  # a sample; the in-process test below covers every case
        proc = score(base, "--lenient", "--trial_selection=time")
        assert proc.returncode == 0, proc.stderr
        assert f"{BAD[name][1]}; skipped (--lenient)" in proc.stdout
        report = (base / "out" / "report.md").read_text()
        assert "## Trials skipped" in report and f"trial_2`: {BAD[name][1]}" in report
    logs, warnings, skipped = read_experiments(str(bad_trees["empty"] / "exp"), lenient=True)
    assert [t.trial for t in logs] == [1] and skipped == [(str(bad_trees["empty"] / "exp" / "a" / "study_0" /
                                                               "mnist_pytorch" / "trial_2"), "is empty")]  # fmt: skip


def test_every_bad_log_is_refused_in_process_too(bad_trees):
    for name, base in bad_trees.items():
        with pytest.raises(Exception, match="pass --lenient") as e:
            read_experiments(str(base / "exp"), lambda w, f: target_of(w, f).column)
        assert BAD[name][1] in str(e.value) and "\n" not in str(e.value)
        logs, _, skipped = read_experiments(str(base / "exp"), lambda w, f: target_of(w, f).column, lenient=True)
        assert len(logs) == 1 and skipped[0][1] == BAD[name][1]


def test_a_trial_without_evals_is_noted_as_skipped(tmp_path):
    trial(tmp_path / "exp")
    (tmp_path / "exp" / "a" / "study_0" / "mnist_pytorch" / "trial_2").mkdir()
    proc = score(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "trial_2`: no eval_measurements.csv (never evaluated)" in (tmp_path / "out" / "report.md").read_text()


def test_one_submission_in_two_frameworks_is_scored_per_framework(tmp_path):
    root = tmp_path / "exp"
    torch_trial = trial(root, study=0, framework="pytorch")
    jax_trial = trial(root, study=1, framework="jax")
    logs, warnings, _ = read_experiments(str(root))
    c = compare(logs, warnings=warnings)
    assert c.workloads == ["mnist_jax", "mnist_pytorch"]  # never one median over both (tests/test_scoring_frameworks)
    assert {t.log.workload: t.log.path for t in c.trials} == {"mnist_pytorch": str(torch_trial),
                                                              "mnist_jax": str(jax_trial)}  # fmt: skip


def test_a_diverged_trial_never_reaches(tmp_path):
    root = tmp_path / "exp"
    d = trial(root, n=1, text="global_step,score,validation/accuracy\n100,5.0,0.99\n")
    (d / "meta_data_0.json").write_text(json.dumps({"diverged": {"step": 150, "reason": "non-finite loss"}}))
    trial(root, n=2, text="global_step,score,validation/accuracy\n100,9.0,0.99\n")
    logs, _, _ = read_experiments(str(root))
    assert [t.diverged for t in logs] == [True, False]
    c = compare(logs)
    assert c.time("a", "mnist") == 9.0  # trial 1 logged a hit before it diverged; it does not count
    assert [t.hit.reached for t in c.trials] == [False, True]
    (d / "meta_data_1.json").write_text(json.dumps({"diverged": False}))  # a resume that did not diverge
    assert read_experiments(str(root))[0][0].diverged  # any record of a divergence counts
    (d / "meta_data_0.json").write_text(json.dumps({"diverged": None}))
    assert not read_experiments(str(root))[0][0].diverged
    only = compare([logs[0]])
    assert only.time("a", "mnist") == math.inf and only.scores == {"a": 0.0}


def test_non_finite_metrics_never_reach():
    t, s = np.array([1.0, 2.0, 3.0]), np.array([1, 2, 3])
    assert not scores.first_hit(t, s, np.array([np.inf, np.nan, 0.5]), 0.97, False).reached  # accuracy +inf
    assert not scores.first_hit(t, s, np.array([-np.inf, np.nan, 3.0]), 2.2, True).reached  # loss -inf
    assert scores.first_hit(t, s, np.array([np.nan, np.inf, 0.98]), 0.97, False).index == 2
    target = Target("accuracy", 0.97, False)
    assert not target.reached(math.inf) and not target.reached(math.nan) and target.reached(0.97)


def test_a_log_with_inf_and_nan_metrics_scores_as_not_reached(tmp_path):
    root = tmp_path / "exp"
    trial(root, text="global_step,score,validation/accuracy\n1,1.0,inf\n2,2.0,nan\n3,3.0,\n")
    logs, _, _ = read_experiments(str(root), lambda w, f: target_of(w, f).column)
    assert compare(logs).time("a", "mnist") == math.inf


def test_unknown_benchmark_version_is_one_line(tmp_path):
    trial(tmp_path / "exp")
    proc = score(tmp_path, "--benchmark_version=0.4")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: unknown --benchmark_version=0.4; use one of 0.5, 0.6"
    assert not (tmp_path / "out").exists()
