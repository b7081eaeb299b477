"""The calibration's promise: with its first search-space point (seed 0), the NAdamW baseline reaches every
suite workload's validation target within the budget through ``python -m runner``. Minutes: marked slow."""

import pytest

from tests.cli_helpers import NADAMW, NADAMW_SPACE, run_cli
from workloads.registry import CPU_SUITE


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
