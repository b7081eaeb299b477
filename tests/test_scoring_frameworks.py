"""Scoring across frameworks against hand-computed fixtures: a workload logged by a submission in both frameworks
is scored as one entry per framework (``mnist_pytorch``, ``mnist_jax``: own target, medians, 4x rule, profile
column), with a "Framework comparison" of each submission's times; submissions each in one framework still share
one workload, as on AlgoPerf's leaderboard; official variants map to their base in the same framework."""

import csv
import math

import pytest

from scoring.compare import compare
from scoring.experiments import read_experiments
from scoring.frameworks import Entries, framework_rows
from scoring.report import markdown
from scoring.targets import Target, benchmark, target_of
from tests.test_scoring_algoperf import area
from tests.test_scoring_inputs import score, trial

# (submission, framework) -> per study (step, seconds) of the first eval at the mnist target (accuracy >= 0.97),
# or None: never reached. Each trial logs one eval below the target first.
HITS = {
    ("a", "pytorch"): [(100, 10.0), (120, 12.0), (200, 20.0)],
    ("a", "jax"): [(100, 6.0), (150, 9.0), None],
    ("b", "pytorch"): [(300, 30.0), (240, 24.0), (270, 27.0)],
    ("b", "jax"): [(200, 20.0), (160, 16.0), (180, 18.0)],
}
# Hand-computed medians over studies (a never-reached study counts as slowest): time / steps
# a: pytorch 12 s / 120, jax median(6, 9, inf) = 9 s / median(100, 150, inf) = 150; ratio jax/pytorch 0.75
# b: pytorch 27 s / 270, jax 18 s / 180; ratio 18/27 = 2/3
# Per entry, ratios to the best: mnist_jax a 1, b 18/9 = 2; mnist_pytorch a 1, b 27/12 = 2.25.
# Speedup of a over b (t_b / t_a, geometric mean over the two entries): sqrt(2 * 2.25) = 1.5 * sqrt(2).
EXPECTED = {
    ("a", "mnist_pytorch"): (12.0, 120),
    ("a", "mnist_jax"): (9.0, 150),
    ("b", "mnist_pytorch"): (27.0, 270),
    ("b", "mnist_jax"): (18.0, 180),
}


def eval_log(hit) -> str:
    rows = ["global_step,score,validation/accuracy", "10,1.0,0.5"]
    if hit is not None:
        rows.append(f"{hit[0]},{hit[1]},0.975")
    else:
        rows.append("400,40.0,0.96")
    return "\n".join(rows) + "\n"


def campaign(root, hits=HITS):
    """A 2 submissions x 2 frameworks x 1 workload campaign in python -m tuning's layout, one trial per study."""
    for (submission, framework), studies in hits.items():
        for k, hit in enumerate(studies):
            trial(root, submission, study=k, framework=framework, text=eval_log(hit))
    return root


def scored(root, **kw):
    logs, warnings, skipped = read_experiments(str(root), lambda w, f: target_of(w, f).column)
    return compare(logs, warnings=warnings, skipped=skipped, **kw)


def test_each_framework_is_its_own_entry_with_hand_computed_numbers(tmp_path):
    c = scored(campaign(tmp_path / "exp"), self_tuning=True, baseline="b")
    assert c.workloads == ["mnist_jax", "mnist_pytorch"] and c.entries.split == {"mnist"}
    assert {(r.submission, r.workload): (r.time, r.step) for r in c.rows} == EXPECTED
    assert c.targets["mnist_jax"] == c.targets["mnist_pytorch"] == Target("accuracy", 0.97, False)
    assert c.targets["mnist_jax"] == target_of("mnist", "jax")
    assert list(c.ratios["a"]) == [1.0, 1.0] and list(c.ratios["b"]) == [2.0, 2.25]
    assert c.scores["a"] == 1.0 and c.scores["b"] == pytest.approx((area(2.0) + area(2.25)) / 2, abs=1e-12)
    value, shared = c.speedups["a"]
    assert shared == 2 and value == pytest.approx(1.5 * math.sqrt(2), rel=1e-12)
    assert not [w for w in c.warnings if "framework" in w]  # no "mixes frameworks" any more
    rows = {r.submission: r for r in framework_rows(c.rows, c.entries)}
    assert rows["a"].times == {"pytorch": 12.0, "jax": 9.0} and rows["a"].steps == {"pytorch": 120, "jax": 150}
    assert rows["a"].ratio("jax") == 0.75 and rows["b"].ratio("jax") == pytest.approx(2 / 3, rel=1e-12)
    assert rows["a"].reached == {"pytorch": "3/3", "jax": "2/3"} and rows["a"].ratio("pytorch") == 1.0


@pytest.mark.integration
def test_the_cli_scores_both_framework_entries_and_compares_them(tmp_path):
    campaign(tmp_path / "exp")
    proc = score(tmp_path, "--self_tuning_ruleset")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    with open(out / "time_to_targets.csv", newline="") as f:
        rows = {(r["submission"], r["workload"]): (float(r["time_to_target"]), float(r["step_to_target"]))
                for r in csv.DictReader(f)}  # fmt: skip
    assert rows == EXPECTED
    with open(out / "framework_comparison.csv", newline="") as f:
        table = [(r["submission"], r["framework"], r["time_to_target"], r["time_ratio_to_pytorch"])
                 for r in csv.DictReader(f)]  # fmt: skip
    assert table == [("a", "pytorch", "12.0", "1.0"), ("a", "jax", "9.0", "0.75"),
                     ("b", "pytorch", "27.0", "1.0"), ("b", "jax", "18.0", "0.6666666666666666")]  # fmt: skip
    report = (out / "report.md").read_text()
    section = report.split("## Framework comparison")[1].split("\n## ")[0]
    assert (
        "| submission | workload | time pytorch (s) | time jax (s) | jax / pytorch | steps pytorch | steps jax |"
        in section
    )
    assert "| a | mnist | 12.00 | 9.00 | 0.750 | 120 | 150 | 3/3, 2/3 |" in section
    assert "| b | mnist | 27.00 | 18.00 | 0.667 | 270 | 180 | 3/3, 3/3 |" in section
    assert "| mnist_jax | accuracy >= 0.97 | 9.00 s, 150 steps | 18.00 s, 180 steps |" in report  # one row per entry
    assert (out / "curves_mnist_jax.png").is_file() and (out / "curves_mnist_pytorch.png").is_file()
    assert "Framework comparison" in proc.stdout and "mixes frameworks" not in proc.stdout + report


def test_submissions_in_one_framework_each_share_the_workload(tmp_path):
    hits = {("a", "pytorch"): HITS[("a", "pytorch")], ("b", "jax"): HITS[("b", "jax")]}
    c = scored(campaign(tmp_path / "exp", hits), self_tuning=True)
    assert c.workloads == ["mnist"] and not c.entries.split and framework_rows(c.rows, c.entries) == []
    assert {(r.submission, r.time) for r in c.rows} == {("a", 12.0), ("b", 18.0)}  # ranked together, as AlgoPerf
    assert list(c.ratios["b"]) == [1.5]
    assert "## Framework comparison" not in markdown(c, "eval_index", True, "exp")


def test_a_submission_missing_one_framework_is_never_reaching_there(tmp_path):
    hits = {k: v for k, v in HITS.items() if k != ("b", "jax")}
    c = scored(campaign(tmp_path / "exp", hits), self_tuning=True)
    assert c.workloads == ["mnist_jax", "mnist_pytorch"]
    assert "submission b has no trials on mnist_jax (scored as never reaching)" in c.warnings
    assert [r.submission for r in framework_rows(c.rows, c.entries)] == ["a"]
    assert list(c.ratios["b"]) == [math.inf, 2.25]


def test_official_variants_map_to_their_base_in_the_same_framework(tmp_path):
    root = tmp_path / "exp"
    loss = "global_step,score,validation/loss\n10,5.0,0.12\n"  # below both targets: reached at 5 s
    for framework in ("pytorch", "jax"):
        for workload in ("criteo1tb", "criteo1tb_embed_init"):
            trial(root, "a", workload=workload, framework=framework, text=loss)
    c = scored(root, self_tuning=True, version="0.5")
    assert c.variants == {"criteo1tb_embed_init_jax": "criteo1tb_jax",
                          "criteo1tb_embed_init_pytorch": "criteo1tb_pytorch"}  # fmt: skip
    assert c.base_workloads == ["criteo1tb_jax", "criteo1tb_pytorch"]
    assert c.targets["criteo1tb_embed_init_jax"] == Target("loss", 0.129657, True)
    entries = Entries({"x_jax": ("criteo1tb_embed_init", "jax")}, frozenset({"criteo1tb_embed_init"}))
    assert entries.base("x_jax", benchmark("0.5").base_of) == "criteo1tb"  # an unsplit base keeps its plain name
