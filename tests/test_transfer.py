"""The transfer table (scoring/transfer.py): a fixture of AlgoPerf-layout logs for ogbg beside a suite campaign on
qm9_gnn and stdlib_lm, every figure computed by hand; bad inputs get one line."""

import csv
import math

import pytest

from scoring import transfer
from tests.cli_helpers import run_cli
from tests.test_scoring import write_fixture

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

MISS = [(10, 1.0, 0.5)]
# The suite: qm9_gnn (mAP >= 0.84) reached by nadamw at (steps, s) (200, 10), (240, 12), (320, 16), by shampoo at
# (100, 6), (100, 7), (100, 9); stdlib_lm (loss <= 2.2) once each, it has no AlgoPerf family.
SUITE = {
    ("nadamw", "qm9_gnn"): [{1: MISS + [(n, t, 0.9)]} for n, t in ((200, 10.0), (240, 12.0), (320, 16.0))],
    ("shampoo", "qm9_gnn"): [{1: MISS + [(100, t, 0.9)]} for t in (6.0, 7.0, 9.0)],
    ("nadamw", "stdlib_lm"): [{1: [(10, 1.0, 3.0), (50, 5.0, 2.1)]}],
    ("shampoo", "stdlib_lm"): [{1: [(10, 1.0, 3.0), (40, 5.0, 2.1)]}],
}
# AlgoPerf's ogbg (mAP >= 0.28098), one trial per study (coverage warnings only): baseline at (1000, 100),
# (1200, 120), (1600, 160); shampoo at (500, 62), (600, 75), (800, 100).
PUBLISHED = {"baseline": [(1000, 100.0), (1200, 120.0), (1600, 160.0)], "shampoo": [(500, 62.0), (600, 75.0),
                                                                                    (800, 100.0)]}  # fmt: skip


def write_published(root):
    for submission, hits in PUBLISHED.items():
        for k, (step, time) in enumerate(hits):
            d = root / submission / f"study_{k}" / "ogbg_jax" / "trial_1"
            d.mkdir(parents=True)
            with open(d / "eval_measurements.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["global_step", "score", "validation/mean_average_precision"])
                w.writerows([[1, 1.0, 0.05], [step, time, 0.3]])
    return root


def test_transfer_table_by_hand(tmp_path):
    """AlgoPerf: step ratio 600/1200 = 0.5, time ratio 75/120, cost 1.25; drawn independently, the step ratio's
    extremes 500/1600 and 800/1000 each have mass (7/27)^2 > 2.5%; a resample's cost ratio is shampoo's seconds
    per step in its median study over the baseline's 0.1 s: 0.124 / 0.1 to 0.125 / 0.1. Suite: step ratio
    100/240, paired interval [100/320, 100/200]; the intervals overlap, both below 1; projection 100/240 x 1.25 =
    0.521."""
    suite, published = write_fixture(tmp_path / "suite", SUITE), write_published(tmp_path / "algoperf")
    out = tmp_path / "transfer.md"
    proc = run_cli(f"--submission_directory={suite}", f"--algoperf_logs={published}", "--self_tuning_ruleset",
                   f"--output={out}", module="scoring.transfer")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in out.read_text().splitlines()}
    qm9 = rows["qm9_gnn"]
    assert qm9[1:5] == ["ogbg", "0.500 [0.312, 0.800]", "1.250 [1.240, 1.250]", "0.417 [0.312, 0.500]"]
    assert qm9[7:9] == ["yes", "yes"] and qm9[9].startswith("0.521 [0.391, 0.625]")
    assert rows["stdlib_lm"][1] == "none in v0.5/v0.6" and proc.stdout == out.read_text()


def test_agreement_flags():
    iv = transfer.paired.Interval
    pub = {"steps": iv(0.5, 0.45, 0.55), "cost": iv(1.2, 1.1, 1.3), "time": iv(0.6, 0.5, 0.7)}
    apart = transfer.TransferRow("w", "f", pub, {"steps": iv(1.2, 1.1, 1.3), "cost": iv(1, 1, 1),
                                                 "time": iv(1, 1, 1)}, 3)  # fmt: skip
    assert (apart.overlap, apart.same_side) == (False, False)
    assert apart.projection == iv(pytest.approx(1.44), pytest.approx(1.32), pytest.approx(1.56))
    nan = iv(math.nan, math.nan, math.nan)
    missing = transfer.TransferRow("w", "f", {"steps": nan, "cost": nan, "time": nan}, apart.suite, 3)
    assert (missing.overlap, missing.same_side, math.isnan(missing.projection.point)) == (None, None, True)


def test_bad_inputs_get_one_line(tmp_path):
    suite = write_fixture(tmp_path / "suite", SUITE)
    for args, message in (
        ([f"--submission_directory={suite}", f"--algoperf_logs={tmp_path / 'none.tar.xz'}"], "does not exist"),
        ([f"--submission_directory={tmp_path / 'x'}", f"--algoperf_logs={write_published(tmp_path / 'a')}"],
         "is not a directory"),
        ([f"--submission_directory={suite}", f"--algoperf_logs={tmp_path / 'a'}", "--submission=soap"],
         "--submission=soap has no logs"),
    ):  # fmt: skip
        proc = run_cli(*args, module="scoring.transfer")
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, args
