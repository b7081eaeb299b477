"""Scoring against hand-computed fixtures: time to target, best trials under both rules, medians, the 4x rule,
profiles, scores, speedups, the edge cases (never reached, ties, missing workloads, unequal studies), plots."""

import csv
import math

import numpy as np
import pytest

from scoring import plots, scores
from scoring.compare import compare
from scoring.experiments import read_experiments
from scoring.report import speedup_lines, time_table
from tests.cli_helpers import run_cli

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

# (submission, workload) -> studies -> trials -> eval rows (global_step, submission time, validation metric).
# Targets: mnist accuracy >= 0.97, stdlib_lm loss <= 2.2, qm9_gnn mean_average_precision >= 0.84.
NAN = float("nan")
HIT_MNIST = [(100, 1.0, 0.5)]  # prefix rows below target
FIXTURE = {
    ("a", "mnist"): [
        # study 0: trial 2 reaches first in time (8 s, its 3rd eval); trial 1 at an earlier eval index (2nd, 10 s)
        {1: [(100, 5.0, 0.9), (200, 10.0, 0.97)], 2: [(50, 4.0, 0.9), (100, 6.0, 0.95), (150, 8.0, 0.975)]},
        # study 1: time rule 9 s (trial 1, 3rd eval); index rule 11 s (trial 2, 2nd eval)
        {1: [(10, 3.0, 0.5), (20, 6.0, 0.6), (30, 9.0, 0.98)], 2: [(10, 5.5, 0.5), (20, 11.0, 0.99)]},
        # study 2: trial 2 diverged (NaN never reaches); trial 1 at 20 s
        {1: [(10, 10.0, 0.9), (20, 20.0, 0.971)], 2: [(10, 10.0, NAN), (20, 20.0, NAN)]},
    ],
    ("b", "mnist"): [{1: HIT_MNIST + [(200, 12.0, 0.97)]}, {1: HIT_MNIST + [(200, 15.0, 0.97)]}],  # 2 studies
    ("c", "mnist"): [{1: HIT_MNIST + [(900, 45.0, 0.97)]}] * 3,  # 5x the best: infinite by the 4x rule
    ("a", "stdlib_lm"): [{1: [(10, 50.0, 2.2)]}] * 3,  # <= for a loss: exactly the target counts
    ("b", "stdlib_lm"): [{1: [(10, 20.0, 2.1)], 2: [(10, 20.0, 2.0)]}] * 3,  # a tie: the lower trial number wins
    ("c", "stdlib_lm"): [{1: [(5, 30.0, 2.3), (10, 70.0, 2.19)]}] * 3,
    ("a", "qm9_gnn"): [{1: [(10, 10.0, 0.85)]}] * 3,
    ("b", "qm9_gnn"): [{1: [(10, 25.0, 0.86)]}] * 3,
    # c has no qm9_gnn trials: a warning (an error with --strict), scored as never reaching
}
METRIC = {"mnist": "accuracy", "stdlib_lm": "loss", "qm9_gnn": "mean_average_precision"}
# Hand-computed medians (time rule): a 9 / 50 / 10, b 13.5 / 20 / 25, c 45 / 70 / missing.
# Ratios to the best (9, 20, 10): a 1, 2.5, 1; b 1.5, 1, 2.5; c 5 -> inf, 3.5, inf. With ratios at midpoints of
# the tau grid the trapezoidal area equals the closed form sum_w (4 - r_w) / 3 / 3.
EXPECTED_TIMES = {
    ("a", "mnist"): 9.0,
    ("a", "stdlib_lm"): 50.0,
    ("a", "qm9_gnn"): 10.0,
    ("b", "mnist"): 13.5,
    ("b", "stdlib_lm"): 20.0,
    ("b", "qm9_gnn"): 25.0,
    ("c", "mnist"): 45.0,
    ("c", "stdlib_lm"): 70.0,
}
EXPECTED_SCORES = {"a": (3 + 1.5 + 3) / 9, "b": (2.5 + 3 + 1.5) / 9, "c": 0.5 / 9}


def write_fixture(root, fixture=FIXTURE):
    for (submission, workload), studies in fixture.items():
        for k, trials in enumerate(studies):
            for n, evals in trials.items():
                d = root / submission / f"study_{k}" / f"{workload}_pytorch" / f"trial_{n}"
                d.mkdir(parents=True)
                with open(d / "eval_measurements.csv", "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(["global_step", "preemption_count", f"validation/{METRIC[workload]}", "score"])
                    w.writerows([step, 0, value, t] for step, t, value in evals)
    return root


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def fixture_dir(tmp_path):
    return write_fixture(tmp_path / "experiments")


def test_first_hit_is_inclusive_directional_and_nan_safe():
    t, s = np.array([1.0, 2.0, 3.0]), np.array([10, 20, 30])
    assert scores.first_hit(t, s, np.array([0.5, 0.97, 0.99]), 0.97, False) == scores.Hit(2.0, 20, 1)
    assert scores.first_hit(t, s, np.array([3.0, 2.5, 2.2]), 2.2, True) == scores.Hit(3.0, 30, 2)
    miss = scores.first_hit(t, s, np.array([NAN, NAN, 0.9]), 0.97, False)
    assert not miss.reached and miss.time == math.inf and miss.step is None


def test_best_trial_rules_and_ties():
    hits = {1: scores.Hit(10.0, 200, 1), 2: scores.Hit(8.0, 150, 2), 3: scores.Hit()}
    assert scores.best_trial(hits, "time") == 2 and scores.best_trial(hits, "eval_index") == 1
    assert scores.best_trial({1: scores.Hit(5.0, 1, 0), 2: scores.Hit(5.0, 1, 0)}) == 1
    assert scores.best_trial({1: scores.Hit()}) is None


def test_median_counts_never_as_slowest():
    assert scores.median_time([8.0, 9.0, 20.0]) == 9.0
    assert scores.median_time([12.0, 15.0]) == 13.5
    assert scores.median_time([8.0, math.inf, math.inf]) == math.inf
    assert scores.median_time([8.0, 9.0, math.inf]) == 9.0


def test_profile_and_score_closed_forms():
    ratios = scores.performance_ratios({"x": {"w1": 10.0, "w2": 50.0}, "y": {"w1": 15.0, "w2": 10.0}}, ["w1", "w2"])
    assert ratios["x"].tolist() == [1.0, math.inf] and ratios["y"].tolist() == [1.5, 1.0]  # 5x -> inf
    rho = scores.performance_profile(ratios["y"])
    assert rho[0] == 0.5 and rho[-1] == 1.0 and rho[scores.TAUS >= 1.5].min() == 1.0
    assert scores.benchmark_score(rho) == pytest.approx((3 + 2.5) / 3 / 2)
    assert scores.benchmark_score(scores.performance_profile(np.array([math.inf]))) == 0.0
    both_never = scores.performance_ratios({"x": {"w": math.inf}, "y": {"w": math.inf}}, ["w"])
    assert both_never["x"].tolist() == [math.inf]
    assert scores.speedup({"w1": 10.0, "w2": 40.0}, {"w1": 5.0, "w2": 10.0}) == (pytest.approx(math.sqrt(8)), 2)
    assert scores.speedup({"w1": math.inf}, {"w1": 5.0}) == (pytest.approx(math.nan, nan_ok=True), 0)


def test_fixture_times_scores_and_speedups(fixture_dir):
    logs, warnings, _ = read_experiments(str(fixture_dir))
    c = compare(logs, rule="time", baseline="a", warnings=warnings)
    assert {(r.submission, r.workload): r.time for r in c.rows} == EXPECTED_TIMES
    assert c.time("c", "qm9_gnn") == math.inf
    assert c.scores == pytest.approx(EXPECTED_SCORES)
    assert c.ratios["c"].tolist() == [math.inf, math.inf, 3.5]  # workloads sorted: mnist, qm9_gnn, stdlib_lm
    v, n = c.speedups["b"]
    assert n == 3 and v == pytest.approx((9 / 13.5 * 10 / 25 * 50 / 20) ** (1 / 3))
    v, n = c.speedups["c"]
    assert n == 2 and v == pytest.approx(math.sqrt(9 / 45 * 50 / 70))  # medians, before the 4x rule
    assert any("submission c has no trials on qm9_gnn" in w for w in c.warnings)
    assert "workload mnist: submissions ran different studies (a: 0, 1, 2; b: 0, 1; c: 0, 1, 2)" in c.warnings
    assert "a/study_0/mnist: 2 trial(s) where external tuning expects 5" in c.warnings
    chosen = {
        (t.log.study, t.log.trial)
        for t in c.trials
        if t.chosen and t.log.submission == "a" and t.log.workload == "mnist"
    }
    assert chosen == {(0, 2), (1, 1), (2, 1)}
    tie = [t.log.trial for t in c.trials if t.chosen and t.log.submission == "b" and t.log.workload == "stdlib_lm"]
    assert tie == [1, 1, 1]


def test_official_trial_rule_picks_the_earliest_eval_index(fixture_dir):
    c = compare(read_experiments(str(fixture_dir))[0], rule="eval_index")
    assert c.time("a", "mnist") == 11.0  # studies give 10, 11, 20 instead of 8, 9, 20
    chosen = {
        (t.log.study, t.log.trial)
        for t in c.trials
        if t.chosen and t.log.submission == "a" and t.log.workload == "mnist"
    }
    assert chosen == {(0, 1), (1, 2), (2, 1)}


def test_strict_refuses_missing_workloads_and_unequal_studies(fixture_dir):
    with pytest.raises(Exception, match=r"--strict: submission c has no trials on qm9_gnn .* \(and \d+ more\)"):
        compare(read_experiments(str(fixture_dir))[0], strict=True)


def test_self_tuning_scores_one_trial_per_study(tmp_path):
    root = write_fixture(tmp_path, {("a", "mnist"): [{1: [(10, 9.0, 0.98)], 2: [(10, 2.0, 0.99)]}]})
    c = compare(read_experiments(str(root))[0], self_tuning=True)
    assert c.time("a", "mnist") == 9.0  # trial 2 would have been faster, but self-tuning gets one trial
    assert any("2 trials under self-tuning; only trial 1 is scored" in w for w in c.warnings)


def test_cli_writes_every_output_and_prints_the_table(fixture_dir, tmp_path):
    out = tmp_path / "scores"
    proc = run_cli(f"--submission_directory={fixture_dir}", f"--output_dir={out}", "--baseline=a",
                   "--trial_selection=time", module="scoring")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "warning: submission c has no trials on qm9_gnn" in proc.stdout
    lines = proc.stdout.splitlines()
    header = "Time to target (median over studies: submission seconds on this machine, and steps; - = not reached):"
    table = lines[lines.index(header) + 1 :]
    assert table[0].split() == ["workload", "target", "a", "b", "c"]
    # steps: a's chosen trials (time rule) hit at 150, 30 and 20 (median 30); b at 200 twice; c at 900
    assert table[2].split("  ")[0] == "mnist" and [x.strip() for x in table[2].split("  ") if x.strip()][2:] == [
        "9.00 s, 30 steps", "13.50 s, 200 steps", "45.00 s, 900 steps"
    ]  # fmt: skip
    assert [x.strip() for x in table[3].split("  ") if x.strip()][2:] == ["10.00 s, 10 steps", "25.00 s, 10 steps", "-"]
    # b vs a: (9 / 13.5 * 10 / 25 * 50 / 20) ** (1 / 3) = 0.874 (1.14x slower); c: sqrt(9 / 45 * 50 / 70) = 0.378
    speedups = [line for line in lines if " reached the targets " in line or "no speedup" in line]
    assert speedups == [
        "b reached the targets 1.14x slower than a (geometric mean over 3 workloads)",
        "c reached the targets 2.65x slower than a (geometric mean over the 2 workloads both reached, of 3)",
    ]
    assert f"Report: {out / 'report.md'}" in proc.stdout
    got = {r["submission"]: float(r["score"]) for r in read(out / "scores.csv")}
    assert got == pytest.approx(EXPECTED_SCORES)
    rows = {(r["submission"], r["workload"]): float(r["time_to_target"]) for r in read(out / "time_to_targets.csv")}
    assert rows == EXPECTED_TIMES  # c has no qm9_gnn row: it ran none
    assert {r["submission"] for r in read(out / "speedups.csv")} == {"b", "c"}
    trials = read(out / "trials.csv")
    assert len(trials) == sum(len(t) for studies in FIXTURE.values() for t in studies)
    report = (out / "report.md").read_text()
    pieces = (
        "## Time to target",
        "| mnist | accuracy >= 0.97 | 9.00 s, 30 steps | 13.50 s, 200 steps | 45.00 s, 900 steps |",
        "| qm9_gnn | mean_average_precision >= 0.84 | 10.00 s, 10 steps | 25.00 s, 10 steps | - |",
        "Targets: kronbench's own for its workloads (mnist, qm9_gnn, stdlib_lm); each is in the time-to-target",
        "![performance profiles](performance_profiles.png)",
        "![stdlib_lm](curves_stdlib_lm.png)",
        "## Speedup over a",
        "## Warnings",
    )
    for piece in pieces:
        assert piece in report
    for name in ("performance_profiles.png", "curves_mnist.png", "curves_stdlib_lm.png", "curves_qm9_gnn.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    strict = run_cli(f"--submission_directory={fixture_dir}", f"--output_dir={tmp_path / 's2'}", "--strict",
                     module="scoring")  # fmt: skip
    assert strict.returncode == 2 and strict.stderr.strip().startswith("error: --strict: submission c has no trials")


def test_plots_have_their_axes_and_one_line_per_submission(fixture_dir):
    c = compare(read_experiments(str(fixture_dir))[0], rule="time")
    fig = plots.performance_profiles(c)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("tau") and ax.get_ylabel() == "fraction of workloads within tau"
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == [f"{s} (score {c.scores[s]:.3f})" for s in "abc"]
    assert np.allclose(lines[0].get_ydata(), c.profiles["a"]) and ax.get_xlim() == (1.0, 4.0)
    fig = plots.training_curves(c, "mnist")
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert ax.get_xlabel() == "submission time (s)" and ax.get_ylabel() == "validation/accuracy"
    assert labels[:3] == [
        "a (study 1, trial 1; target at 9.0 s)",  # the median study's chosen trial
        "b (study 0, trial 1; target at 12.0 s)",
        "c (study 1, trial 1; target at 45.0 s)",  # three equal studies: the middle one
    ]
    assert labels[3] == "target 0.97" and ax.get_lines()[3].get_ydata()[0] == 0.97
    a_line = ax.get_lines()[0]
    assert a_line.get_xdata().tolist() == [3.0, 6.0, 9.0] and a_line.get_ydata().tolist() == [0.5, 0.6, 0.98]


def test_never_reached_everywhere_scores_zero_and_still_plots(tmp_path):
    root = write_fixture(tmp_path, {("a", "mnist"): [{1: [(10, 5.0, 0.5)]}], ("b", "mnist"): [{1: [(10, 5.0, 0.6)]}]})
    c = compare(read_experiments(str(root))[0], baseline="a")
    assert c.scores == {"a": 0.0, "b": 0.0} and c.time("a", "mnist") == math.inf
    assert speedup_lines(c) == [
        "b against a: no speedup, no workload was reached by both (report.md has the official figure, which counts "
        "a miss as the budget)"
    ]
    assert time_table(c)[1][2:] == ["-", "-"]
    labels = [line.get_label() for line in plots.training_curves(c, "mnist").axes[0].get_lines()]
    assert labels[:2] == ["a (study 0, trial 1; not reached)", "b (study 0, trial 1; not reached)"]


@pytest.mark.parametrize(
    "make, args, message",
    [
        (lambda root: None, [], "is not a directory"),
        (lambda root: root.mkdir(), [], "no usable eval_measurements.csv under"),
        (lambda root: write_fixture(root), ["--baseline=zzz"], "--baseline=zzz is not among the submissions (a, b, c)"),
        (lambda root: (root / "a" / "study_0" / "imagenet9_pytorch" / "trial_1").mkdir(parents=True)
         or (root / "a" / "study_0" / "imagenet9_pytorch" / "trial_1" / "eval_measurements.csv").write_text(
             "global_step,score\n1,1.0\n"), [], "no target known for workload 'imagenet9'"),
    ],
)  # fmt: skip
def test_bad_inputs_get_one_line(tmp_path, make, args, message):
    root = tmp_path / "exp"
    make(root)
    proc = run_cli(f"--submission_directory={root}", f"--output_dir={tmp_path / 'out'}", *args, module="scoring")
    assert proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_a_runner_experiment_without_study_folders_is_one_study(tmp_path):
    root = tmp_path / "exp"
    write_fixture(tmp_path / "tmp", {("a", "mnist"): [{1: [(10, 4.0, 0.98)]}]})
    (root / "a").mkdir(parents=True)
    (tmp_path / "tmp" / "a" / "study_0" / "mnist_pytorch").rename(root / "a" / "mnist_pytorch")
    logs, _, _ = read_experiments(str(root))
    assert [(t.submission, t.study, t.workload, t.trial) for t in logs] == [("a", 0, "mnist", 1)]
    assert compare(logs).time("a", "mnist") == 4.0
