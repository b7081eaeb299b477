"""benchmarks.distributed_step_time: one table with each rank's step and refresh time on 1 and 2 processes."""

import re
import subprocess
import sys

import pytest

from tests.cli_helpers import ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)


@pytest.mark.slow
def test_prints_per_rank_times_for_one_and_two_processes():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.distributed_step_time",
            "--models",
            "convnet",
            "--optimizers",
            "SOAP",
            "--steps",
            "12",
            "--frequency",
            "5",
            "--repeats",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| convnet SOAP |")]
    assert [row.split("|")[2].strip() for row in rows] == ["0", "1"]
    shares = []
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        blocks_one, blocks_two = (int(b) for b in cells[2].split(" / "))
        assert blocks_two < blocks_one  # each rank computes only its share
        step1, step2, ratio = float(cells[3]), float(cells[4]), float(cells[5])
        assert ratio == pytest.approx(step2 / step1, abs=0.01)
        assert re.fullmatch(r"\d+\.\d", cells[7]) and re.fullmatch(r"\d+\.\d", cells[8])
        shares.append((float(cells[6]), float(cells[10])))
    for step_or_refresh in zip(*shares, strict=True):  # the ranks split the modelled work
        assert 0 < min(step_or_refresh) and sum(step_or_refresh) == pytest.approx(1.0, abs=0.01)


def test_refuses_too_few_steps_to_time_both_kinds():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.distributed_step_time", "--steps", "5", "--frequency", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "--steps must be at least 2 * --frequency + 2 (= 12)" in proc.stderr
