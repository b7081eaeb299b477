"""The demo's promise: the NAdamW baseline reaches MNIST's 0.97 validation accuracy within the budget."""

import pytest

from tests.cli_helpers import NADAMW, NADAMW_SPACE, run_cli

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
def test_nadamw_reaches_the_mnist_target(tmp_path):
    proc = run_cli(
        "--workload=mnist",
        f"--submission_path={NADAMW}",
        f"--tuning_search_space={NADAMW_SPACE}",
        f"--experiment_dir={tmp_path}",
        "--experiment_name=target",
        "--rng_seed=0",
    )
    assert proc.returncode == 0, proc.stderr
    assert "reached validation accuracy target 0.97" in proc.stdout, proc.stdout
