"""The calibration's promise: with its first search-space point (seed 0), the NAdamW baseline reaches every
suite workload's validation target within the budget through ``python -m runner``. Minutes: marked slow.

The target, budget and step_hint the runner uses are the workload's constants; the fast test below holds them to
the calibration table of docs/measurements.md, so the values the slow test runs at are the calibrated ones."""

import os
import re

import pytest

from tests.cli_helpers import NADAMW, NADAMW_SPACE, ROOT, run_cli
from workloads.registry import CPU_SUITE, get_workload

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)


def calibration_rows() -> dict[str, list[str]]:
    """workload -> the cells of its row in the "Workload calibration" table."""
    with open(os.path.join(ROOT, "docs", "measurements.md"), encoding="utf-8") as f:
        text = f.read().split("### Workload calibration", 1)[1]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells
    return rows


@pytest.mark.parametrize("workload", CPU_SUITE)
def test_workload_constants_are_the_calibrated_ones(workload):
    cells = calibration_rows()[workload]
    w = get_workload(workload)
    target = float(re.search(r"[<>] ([\d.]+)$", cells[1])[1])
    budget = float(re.fullmatch(r"([\d.]+) s", cells[7])[1])
    step_hint = int(cells[8].split("->")[-1])
    assert (w.validation_target_value, w.max_allowed_runtime_sec, w.step_hint) == (target, budget, step_hint)
    assert ("<" in cells[1]) == w.lower_is_better


@pytest.mark.slow
@pytest.mark.parametrize("workload", CPU_SUITE)
def test_nadamw_reaches_the_target(workload, tmp_path):
    proc = run_cli(
        f"--workload={workload}",
        f"--submission_path={NADAMW}",
        f"--tuning_search_space={NADAMW_SPACE}",
        f"--experiment_dir={tmp_path}",
        "--experiment_name=target",
        "--rng_seed=0",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "reached validation" in proc.stdout and "did NOT" not in proc.stdout, proc.stdout
