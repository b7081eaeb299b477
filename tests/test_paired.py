"""The verdict's arithmetic against hand-computed values: time to target split into steps and cost per step
(scoring.decompose), the paired bootstrap, the paired t-test and the sign-flip test, the studies a 10% difference
needs (scoring.paired); and, when ../shared holds AlgoPerf's v0.6 logs, Shampoo's published step and cost ratios."""

import json
import math
import os
import tarfile

import numpy as np
import pytest

from scoring import paired
from scoring.compare import compare
from scoring.decompose import decompose, per_study, ratios
from scoring.experiments import read_experiments
from scoring.targets import target_of
from scoring.verdict import decomposition_table, paired_rows, paired_table
from tests.cli_helpers import ROOT, run_cli
from tests.test_scoring import write_fixture

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data", "algoperf")
MISS = [(10, 1.0, 0.5)]
# Three self-tuning studies each; mnist's target is accuracy >= 0.97. Rows: (global_step, time, accuracy).
# nadamw reaches at (steps, s) (200, 10), (240, 12), (320, 16); fast at (50, 4), (50, 5), (50, 8).
CAMPAIGN = {
    ("nadamw", "mnist"): [{1: MISS + [(n, t, 0.98)]} for n, t in ((200, 10.0), (240, 12.0), (320, 16.0))],
    ("fast", "mnist"): [{1: MISS + [(50, t, 0.98)]} for t in (4.0, 5.0, 8.0)],
}


def comparison(root):
    logs, warnings, skipped = read_experiments(str(root), lambda w, f: target_of(w, f).column)
    return compare(logs, self_tuning=True, baseline="nadamw", warnings=warnings, skipped=skipped)


def test_decomposition_by_hand(tmp_path):
    """Medians: nadamw 12 s over 240 steps (0.05 s/step), fast 5 s over 50 steps (0.1 s/step): time ratio 5/12 =
    step ratio 50/240 x cost ratio 2."""
    c = comparison(write_fixture(tmp_path / "c", CAMPAIGN))
    rows = {r.submission: r for r in decompose(c)}
    assert (rows["nadamw"].steps, rows["nadamw"].steps_lo, rows["nadamw"].steps_hi) == (240, 200, 320)
    assert rows["nadamw"].seconds_per_step == pytest.approx(0.05) and rows["fast"].seconds_per_step == 0.1
    (r,) = ratios(list(rows.values()), "nadamw")
    assert (r.time, r.steps, r.cost) == (pytest.approx(5 / 12), pytest.approx(50 / 240), pytest.approx(2.0))
    assert r.time == pytest.approx(r.steps * r.cost)
    table = decomposition_table(c)
    assert table[0][:4] == ["workload", "submission", "steps to target [min, max]", "time per step"]
    assert ["mnist", "fast", "50 [50, 50]", "100.0 ms", "0.208", "2.000", "0.417"] in table
    assert ["mnist", "nadamw", "240 [200, 320]", "50.0 ms", "(baseline)", "", ""] in table


def test_refined_time_ratio_beside_the_grid_ones(tmp_path):
    """fast's study 1 refines its 5 s crossing to 4.5 s (runner/refine.py's record): refined medians 4.5 and 12."""
    root = write_fixture(tmp_path / "c", CAMPAIGN)
    meta = {"refined_time_to_target": {"step": 45, "time": 4.5, "grid_step": 50, "grid_time": 5.0}}
    (root / "fast" / "study_1" / "mnist_pytorch" / "trial_1" / "meta_data_0.json").write_text(json.dumps(meta))
    table = decomposition_table(comparison(root))
    assert table[0][-1] == "refined time ratio"
    assert ["mnist", "fast", "50 [50, 50]", "100.0 ms", "0.208", "2.000", "0.417", "0.375"] in table


def test_t_distribution_closed_forms():
    # df = 1 (Cauchy): P(|T| <= t) = 2 atan(t) / pi; df = 2: t / sqrt(t^2 + 2)
    for t in (0.5, 1.0, 3.0):
        assert paired.t_within(t, 1) == pytest.approx(2 * math.atan(t) / math.pi, rel=1e-12)
        assert paired.t_within(t, 2) == pytest.approx(t / math.sqrt(t * t + 2), rel=1e-12)
    # the tables' quantiles: t_{0.975} with 2 and 4 df, t_{0.80} with 9 df
    assert paired.t_quantile(0.975, 2) == pytest.approx(4.303, abs=5e-4)
    assert paired.t_quantile(0.975, 4) == pytest.approx(2.776, abs=5e-4)
    assert paired.t_quantile(0.80, 9) == pytest.approx(0.883, abs=5e-4)


def test_t_distribution_matches_scipy():
    stats = pytest.importorskip("scipy.stats", reason="scipy is the reference here")
    for df in (1, 2, 3, 4, 5, 8, 13):
        for t in (0.2, 1.0, 2.5, 6.0):
            assert paired.t_two_sided_p(t, df) == pytest.approx(2 * stats.t.sf(t, df), rel=1e-10, abs=1e-14)
        assert paired.t_quantile(0.975, df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-9)


def test_paired_t_test_and_sign_flip_by_hand():
    # d = 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t = 0.2 / (0.1 / sqrt 3) = 2 sqrt 3; df 2: p = 1 - t / sqrt(t^2 + 2)
    r = paired.paired_test([0.1, 0.2, 0.3])
    t = 2 * math.sqrt(3)
    assert (r.n, r.mean, r.sd, r.t) == (3, pytest.approx(0.2), pytest.approx(0.1), pytest.approx(t))
    assert r.p == pytest.approx(1 - t / math.sqrt(t * t + 2)) and not r.resolved  # 0.0742
    # sign flips: |+-0.1 +-0.2 +-0.3| is 0.6 for +++ and ---, below for the other six
    assert r.p_sign == 0.25 and r.sign_floor == 0.25
    assert paired.sign_flip_p([0.1, -0.2, 0.3]) == 0.75  # |0.2| <= 0.6, 0.4, 0.4, 0.2, 0.2, 0.6 of the 8
    # five studies 0.1, 0.2, 0.3, 0.2, 0.2: sd sqrt(0.02 / 4), t = 2 sqrt 10; df 4: theta = atan(sqrt 10),
    # cos^2 = 1/11, P(|T| <= t) = sin(theta) (1 + cos^2 / 2): resolved, while the sign-flip test sits on its floor
    r = paired.paired_test([0.1, 0.2, 0.3, 0.2, 0.2, math.nan])  # the NaN study (not reached) is left out
    assert r.n == 5 and r.t == pytest.approx(2 * math.sqrt(10))
    assert r.p == pytest.approx(1 - math.sqrt(10 / 11) * (1 + 1 / 22)) and r.resolved  # 0.0032
    assert r.p_sign == 2 / 32 == r.sign_floor
    assert paired.paired_test([0.3]).studies_for_10pct is None and math.isnan(paired.paired_test([]).p)


def test_studies_needed_by_hand():
    """sd 0.1, delta = ln 1.1 = 0.09531: n = 10 gives ((2.262 + 0.883) 0.1 / delta)^2 = 10.89 > 10, n = 11 gives
    ((2.228 + 0.879) 0.1 / delta)^2 = 10.63 <= 11 (t tables, 9 and 10 df)."""
    assert paired.studies_needed(0.1) == 11
    assert paired.studies_needed(0.0) == 2
    assert paired.paired_test([0.1, 0.2, 0.3]).studies_for_10pct == 11


def test_paired_bootstrap_exact_by_hand():
    """Base times 10, 12, 16 (steps 100, 120, 160), submission 4, 5, 8 (steps 50 each), study k with study k. Both
    sort alike, so a joint resample's medians are the same study's: study 0 or 2 with probability 7/27 each (two
    or three draws of it), study 1 with 13/27. Time ratios 0.4, 5/12, 0.5: the interval is [0.4, 0.5]. Drawn
    independently the ends are 4/16 and 8/10 (each pair of extremes has mass (7/27)^2 = 6.7% > 2.5%)."""
    base, sub = ([10.0, 12.0, 16.0], [100.0, 120.0, 160.0]), ([4.0, 5.0, 8.0], [50.0, 50.0, 50.0])
    r = paired.ratio_intervals(base, sub, paired=True)
    assert (r["time"].point, r["time"].lo, r["time"].hi) == (pytest.approx(5 / 12), 0.4, 0.5)
    # steps 50 / 100, 50 / 120, 50 / 160; cost = time ratio / step ratio = t_sub / 5: 0.8, 1.0, 1.6
    assert (r["steps"].lo, r["steps"].hi) == (50 / 160, 50 / 100)
    assert (r["cost"].point, r["cost"].lo, r["cost"].hi) == (pytest.approx(1.0), pytest.approx(0.8), 1.6)
    u = paired.ratio_intervals(base, sub, paired=False)
    assert (u["time"].lo, u["time"].hi) == (4 / 16, 8 / 10)
    assert len(paired.resample_indices(3, 3)[0]) == 27 and len(paired.resample_indices(3, 3, paired=False)[0]) == 729
    # the baseline reaching in one study of three: no median, so no ratio and no interval (though resamples drawing
    # that study twice would have one)
    miss = paired.ratio_intervals(([10.0, math.inf, math.inf], [100.0, math.inf, math.inf]), sub)
    assert all(math.isnan(x) for i in miss.values() for x in (i.point, i.lo, i.hi))


def test_paired_speedup_bootstrap_by_hand():
    """The same studies as speedups t_base / t_sub: 2.5, 2.4, 2.0 with mass 7/27, 13/27, 7/27, whatever the seed
    (drawn independently the interval was [10/8, 16/4]). A submission reaching only in study 0 reaches in a
    resample's median only with two draws of study 0, where the baseline's median is 10: the speedup is 2.5."""
    for seed in (0, 1):
        lo, hi = paired.bootstrap_speedup({"w": [10.0, 12.0, 16.0]}, {"w": [4.0, 5.0, 8.0]},
                                          np.random.default_rng(seed), 4000)  # fmt: skip
        assert (lo, hi) == (pytest.approx(2.0), pytest.approx(2.5))
    one = paired.bootstrap_speedup({"w": [10.0, 12.0, 16.0]}, {"w": [4.0, math.inf, math.inf]},
                                   np.random.default_rng(3), 500)  # fmt: skip
    assert one == (pytest.approx(2.5), pytest.approx(2.5))
    nothing = paired.bootstrap_speedup({"w": [1.0] * 3}, {"w": [math.inf] * 3}, np.random.default_rng(0), 50)
    assert all(math.isnan(x) for x in nothing)


def test_paired_rows_from_a_campaign(tmp_path):
    c = comparison(write_fixture(tmp_path / "c", CAMPAIGN))
    assert [h.step for h in per_study(c)[("fast", "mnist")]] == [50.0, 50.0, 50.0]
    (row,) = paired_rows(c)
    assert row.study_ratios == [pytest.approx(0.4), pytest.approx(5 / 12), pytest.approx(0.5)]
    assert (row.intervals["time"].lo, row.intervals["time"].hi) == (0.4, 0.5)
    # log time ratios ln 0.4, ln 5/12, ln 0.5: every study faster, t-test p < 0.05
    d = [math.log(0.4), math.log(5 / 12), math.log(0.5)]
    assert row.tests["time"].mean == pytest.approx(sum(d) / 3) and row.tests["time"].resolved
    # the medians come from the same study: cost ratios (t_sub / 50) / 0.05 s = 1.6, 2.0, 3.2; steps 50/320..50/200
    table = paired_table([row])
    assert table[1][:6] == ["mnist", "fast", "0.400, 0.417, 0.500", "0.21 [0.16, 0.25]", "2.00 [1.60, 3.20]",
                            "0.42 [0.40, 0.50]"]  # fmt: skip
    assert table[1][6].startswith("faster (p=0.0") and table[1][7].startswith("fewer (p=0.0")


def test_published_v06_step_and_cost_ratios(tmp_path):
    """Shampoo over the baseline in AlgoPerf's v0.6 logs: ratios of the medians over studies of step and time to
    target (issue 29's figures, to their digits)."""
    path = os.path.join(SHARED, "algoperf_v06_external_tuning.tar.xz")
    if not os.path.isfile(path):
        pytest.skip(f"the published logs are not at {path} (../shared next to the repository)")
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "logs", filter="data")
    proc = run_cli(f"--submission_directory={tmp_path / 'logs' / 'external_tuning'}", f"--output_dir={tmp_path / 'o'}",
                   "--baseline=baseline", "--benchmark_version=0.6", module="scoring")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.split("Steps and cost per step", 1)[1].split("\nScored", 1)[0]
    printed = {line.split()[0]: line.split()[-3:] for line in table.splitlines() if " shampoo " in line}
    expected = {"criteo1tb": (0.98, 1.05), "fastmri": (0.72, 1.02), "ogbg": (0.505, 1.24), "wmt": (0.875, 1.09)}
    for workload, (steps, cost) in expected.items():
        step_ratio, cost_ratio, _ = (float(x) for x in printed[workload])
        digits = len(str(steps).split(".")[1])
        assert (round(step_ratio, digits), round(cost_ratio, 2)) == (steps, cost), workload
    assert "Steps and cost per step" in (tmp_path / "o" / "report.md").read_text()
