"""The leaderboard report (scoring/leaderboard.py) from a fixture campaign: per-study times, medians with their
min-max spread, speedups and bootstrap intervals, all checked against values computed by hand (the paired
bootstrap's own fixtures: tests/test_paired.py)."""

import json
import math

import pytest

from scoring import leaderboard
from tests.cli_helpers import run_cli
from tests.test_scoring import write_fixture

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

# Three self-tuning studies (one trial each) per submission and workload. Targets: mnist accuracy >= 0.97,
# qm9_gnn mean_average_precision >= 0.84. Rows: (global_step, submission time, validation metric).
MISS_MNIST, MISS_QM9 = [(10, 1.0, 0.5)], [(10, 1.0, 0.5)]
FIXTURE = {
    ("nadamw", "mnist"): [{1: MISS_MNIST + [(20, t, 0.98)]} for t in (10.0, 12.0, 16.0)],
    ("nadamw", "qm9_gnn"): [{1: MISS_QM9 + [(20, t, 0.85)]} for t in (30.0, 20.0, 25.0)],
    ("fast", "mnist"): [{1: MISS_MNIST + [(20, t, 0.97)]} for t in (5.0, 8.0, 4.0)],
    ("fast", "qm9_gnn"): [{1: MISS_QM9 + [(20, t, 0.9)]} for t in (10.0, 12.5, 15.0)],
    # study 2 of slow on qm9_gnn never reaches: its median is the finite middle one, its spread's top is inf
    ("slow", "mnist"): [{1: MISS_MNIST + [(20, t, 0.99)]} for t in (20.0, 24.0, 30.0)],
    ("slow", "qm9_gnn"): [{1: MISS_QM9 + [(20, 40.0, 0.9)]}, {1: MISS_QM9 + [(20, 50.0, 0.9)]}, {1: MISS_QM9}],
}
# Hand-computed: medians nadamw 12 / 25, fast 5 / 12.5, slow 24 / 50 (inf counts as the slowest).
# Speedups: fast sqrt(12/5 * 25/12.5) = sqrt(4.8); slow sqrt(12/24 * 25/50) = 0.5.


@pytest.fixture
def campaign(tmp_path):
    return write_fixture(tmp_path / "leaderboard", FIXTURE)


def comparison(campaign):
    from scoring.compare import compare
    from scoring.experiments import read_experiments
    from scoring.targets import target_of

    logs, warnings, skipped = read_experiments(str(campaign), lambda w, f: target_of(w, f).column)
    return compare(logs, self_tuning=True, baseline="nadamw", warnings=warnings, skipped=skipped)


def test_study_times_medians_and_spreads_by_hand(campaign):
    c = comparison(campaign)
    per_study = leaderboard.study_times(c)
    assert per_study[("fast", "mnist")] == [5.0, 8.0, 4.0]  # study order
    assert per_study[("slow", "qm9_gnn")] == [40.0, 50.0, math.inf]
    s = leaderboard.spread(per_study[("nadamw", "qm9_gnn")])
    assert (s.median, s.lo, s.hi, s.reached, s.studies) == (25.0, 20.0, 30.0, 3, 3)
    s = leaderboard.spread(per_study[("slow", "qm9_gnn")])
    assert (s.median, s.lo, s.hi, s.reached) == (50.0, 40.0, math.inf, 2)
    assert c.speedups["fast"][0] == pytest.approx(math.sqrt(4.8)) and c.speedups["slow"][0] == pytest.approx(0.5)


def test_report_builds_from_the_fixture_campaign(campaign, tmp_path):
    contention = {
        "date": "2026-12-01 22:00 UTC", "machine": "test", "load_average": [1.0, 1.5, 2.0], "submission": "nadamw",
        "steps": 40, "limit": 1.1, "chosen_workers": 1,
        "rows": [{"workload": "mnist", "workers": 2, "threads": 1, "alone_ms": 10.0, "parallel_ms": 13.0,
                  "factor": 1.3}],
    }  # fmt: skip
    (tmp_path / "contention.json").write_text(json.dumps(contention))
    out = tmp_path / "leaderboard.md"
    args = [f"--submission_directory={campaign}", f"--output={out}", f"--contention={tmp_path / 'contention.json'}"]
    result = run_cli(*args, module="scoring.leaderboard")
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    rows = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| ") and "x |" in line}
    _, lo, hi, _ = leaderboard.speedup_intervals(comparison(campaign), 2000, 0)[
        "fast"
    ]  # the default resamples and seed
    assert f"| 2.19x | {lo:.2f}x to {hi:.2f}x | 2 |" in rows["fast"]  # sqrt(4.8)
    # each workload's ratio lies between its extreme study ratios (10/8, 16/4 and 20/15, 30/10): so does the mean
    # (the paired resamples reach the top: every draw study 2 of mnist and study 0 of qm9_gnn)
    assert math.sqrt(10 / 8 * 20 / 15) <= lo < math.sqrt(4.8) < hi <= math.sqrt(16 / 4 * 30 / 10) * (1 + 1e-12)
    assert "| 0.50x |" in rows["slow"]
    assert "| 1 | fast |" in text  # ranked by score, fastest first
    assert (
        "| mnist | accuracy >= 0.97 | 5.0 [4.0, 8.0] (3/3) | 12.0 [10.0, 16.0] (3/3) | 24.0 [20.0, 30.0] (3/3) |"
        in text
    )
    assert "50.0 [40.0, -] (2/3)" in text
    assert "| mnist | 2 | 1 | 10.0 | 13.0 | 1.30 |" in text and "load average then 1.0, 1.5, 2.0" in text
    assert "logical cores" in text


def test_the_speedup_and_its_interval_use_the_same_studies(tmp_path):
    """A campaign cut short: the submission ran study 0 only. Its speedup over all the baseline's studies,
    sqrt(20/5 * 25/10) = sqrt(10), would sit outside the interval of the one paired study, sqrt(10/5 * 30/10) =
    sqrt(6); the table shows the paired figure."""
    fixture = {
        ("nadamw", "mnist"): [{1: MISS_MNIST + [(20, t, 0.98)]} for t in (10.0, 20.0, 30.0)],
        ("nadamw", "qm9_gnn"): [{1: MISS_QM9 + [(20, t, 0.85)]} for t in (30.0, 20.0, 25.0)],
        ("fast", "mnist"): [{1: MISS_MNIST + [(20, 5.0, 0.97)]}],
        ("fast", "qm9_gnn"): [{1: MISS_QM9 + [(20, 10.0, 0.9)]}],
    }
    c = comparison(write_fixture(tmp_path / "leaderboard", fixture))
    assert c.speedups["fast"][0] == pytest.approx(math.sqrt(10))
    point, lo, hi, k = leaderboard.speedup_intervals(c, 200, 0)["fast"]
    assert point == pytest.approx(math.sqrt(6)) and lo == pytest.approx(point) and hi == pytest.approx(point)
    text = leaderboard.markdown(c, {"fast": (point, lo, hi, k)}, None, 200, 0, "now", "here")
    assert "| fast | " in text and "| 2.45x | 2.45x to 2.45x | 2 |" in text


def test_the_verdict_in_words_names_only_resolved_workloads(campaign):
    """From the fixture by hand: slow's mnist ratios 20/10, 24/12, 30/16 (log SD 0.037, t = 31, p < 0.01) resolve
    slower at the ratio of medians 24/12 = 2.00; its qm9_gnn has two reached studies (ln 4/3, ln 2.5: t = 1.9,
    p = 0.31), unresolved. fast's log ratios spread too wide for 3 studies (t = -2.85 and -3.41, p 0.10 and 0.08)."""
    from scoring.verdict import paired_rows, summary

    c = comparison(campaign)
    fast, slow = summary(paired_rows(c), "nadamw", ["slow", "nadamw", "fast"])[::-1]
    assert slow.startswith("- **slow** against nadamw") and "slower on 1 (mnist 2.00)" in slow
    assert "faster on none" in slow and "unresolved on 1 of 2 tested" in slow
    assert "faster on none; slower on none; unresolved on 2 of 2 tested" in fast
    assert "cost per step" in fast and "untested" not in fast


def test_a_submission_that_missed_its_median_study_is_never_called_faster(tmp_path):
    """Five studies: nadamw reaches in 100 s each; lucky reaches in 50 and 52 s and misses three. The t-test on the
    two studies both reached resolves (ln 0.5, ln 0.52: t = -35, p = 0.02), but there is no ratio of medians: no
    workload is faster, and the paired table says why."""
    from scoring.verdict import paired_rows, paired_table, summary

    fixture = {
        ("nadamw", "mnist"): [{1: MISS_MNIST + [(20, 100.0, 0.98)]} for _ in range(5)],
        ("lucky", "mnist"): [{1: MISS_MNIST + [(20, t, 0.98)]} for t in (50.0, 52.0)] + [{1: MISS_MNIST}] * 3,
    }
    rows = paired_rows(comparison(write_fixture(tmp_path / "leaderboard", fixture)))
    (row,) = rows
    assert row.tests["time"].n == 2 and row.tests["time"].resolved and row.tests["time"].mean < 0
    assert math.isnan(row.intervals["time"].point)  # a median study did not reach: no ratio of medians
    (line,) = summary(rows, "nadamw", ["lucky"])
    assert "faster on none; slower on none; unresolved on 1 of 1 tested" in line
    assert "but a median study did not reach" in paired_table(rows)[1][6]


def test_two_implementations_of_one_algorithm_are_set_side_by_side(tmp_path):
    """kronbench's soap and HeavyBall's take the same 20 steps in every study, HeavyBall's at twice the seconds: step
    ratio 1 (unresolved: no difference at all), cost and time ratio 0.5 in every study (resolved: p = 0)."""
    fixture = {
        ("nadamw", "mnist"): [{1: MISS_MNIST + [(20, t, 0.98)]} for t in (20.0, 24.0, 30.0)],
        ("soap", "mnist"): [{1: MISS_MNIST + [(20, t, 0.98)]} for t in (10.0, 12.0, 16.0)],
        ("heavyball_soap", "mnist"): [{1: MISS_MNIST + [(20, 2 * t, 0.98)]} for t in (10.0, 12.0, 16.0)],
    }
    text = leaderboard.markdown(
        c := comparison(write_fixture(tmp_path / "leaderboard", fixture)),
        leaderboard.speedup_intervals(c, 200, 0), None, 200, 0, "now", "here",
    )  # fmt: skip
    assert "## Implementations" in text
    row = next(line for line in text.splitlines() if line.startswith("| mnist | soap | heavyball_soap |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[3:] == ["20 [20, 20]", "20 [20, 20]", "600.0 ms", "1.20 s", "1.00 [1.00, 1.00]", "0.50 [0.50, 0.50]",
                         "0.50 [0.50, 0.50]", "faster (p=0.000)", "no (p=1.000)"]  # fmt: skip


def test_no_implementations_section_without_a_pair(campaign):
    c = comparison(campaign)
    assert "## Implementations" not in leaderboard.markdown(c, {}, None, 200, 0, "now", "here")


def test_bad_inputs_get_one_line(campaign, tmp_path, capsys):
    for args, message in (
        ([f"--submission_directory={tmp_path / 'none'}"], "is not a directory"),
        ([f"--submission_directory={campaign}", "--baseline=adam"], "--baseline=adam is not among"),
        ([f"--submission_directory={campaign}", f"--contention={tmp_path / 'x.json'}"], "cannot be read"),
        ([f"--submission_directory={campaign}", "--bootstrap=0"], "must be at least 1"),
    ):
        with pytest.raises(SystemExit) as e:
            leaderboard.main([*args, f"--output={tmp_path / 'l.md'}"])
        err = capsys.readouterr().err
        assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, args
    assert not (tmp_path / "l.md").exists()


def test_refined_times_get_their_own_table_and_leave_the_score_alone(campaign, tmp_path):
    """Trials that recorded a refined crossing (runner/refine.py, in meta_data_0.json) count with it in the
    refined table, where it refines the eval the scorer found first; a record for another eval is ignored."""

    def record(submission, study, workload, time, grid_time):
        trial = campaign / submission / f"study_{study}" / f"{workload}_pytorch" / "trial_1"
        meta = {"refined_time_to_target": {"step": 15, "time": time, "grid_step": 20, "grid_time": grid_time}}
        (trial / "meta_data_0.json").write_text(json.dumps(meta))

    record("fast", 0, "mnist", 3.5, 5.0)  # refines study 0's 5.0
    record("fast", 1, "mnist", 7.0, 8.0)
    record("fast", 2, "mnist", 1.0, 9.0)  # not the eval the scorer found (4.0): ignored
    c = comparison(campaign)
    assert leaderboard.study_times(c, refined=True)[("fast", "mnist")] == [3.5, 7.0, 4.0]
    assert leaderboard.study_times(c)[("fast", "mnist")] == [5.0, 8.0, 4.0]
    out = tmp_path / "leaderboard.md"
    result = run_cli(f"--submission_directory={campaign}", f"--output={out}", module="scoring.leaderboard")
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    refined = text.split("## Refined time to target", 1)[1]
    assert "2 of the 17 reached trials carry a refined time" in refined  # 6 cells x 3 studies, one never reached
    assert "| mnist | 4.0 [3.5, 7.0] (3/3) |" in refined  # fast: medians of 3.5, 7.0, 4.0
    assert "| mnist | accuracy >= 0.97 | 5.0 [4.0, 8.0] (3/3) |" in text  # the grid table is unchanged


def test_no_refined_table_without_records(campaign, tmp_path):
    out = tmp_path / "leaderboard.md"
    assert (
        run_cli(f"--submission_directory={campaign}", f"--output={out}", module="scoring.leaderboard").returncode == 0
    )
    assert "Refined time to target" not in out.read_text()
