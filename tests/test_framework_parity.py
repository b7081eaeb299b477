"""``python -m benchmarks.framework_parity``: the PyTorch and JAX trials of one submission, from the same weights on
the same batches, report the same validation metric (float32 rounding apart) while training moves it."""

import subprocess
import sys

import pytest

from tests.cli_helpers import ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)


def test_torch_and_jax_nadamw_train_mnist_alike():
    cmd = [sys.executable, "-m", "benchmarks.framework_parity", "--workload=mnist", "--submission=nadamw"]
    proc = subprocess.run([*cmd, "--steps=60", "--every=30"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split() for line in proc.stdout.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == [30, 60]
    for _, torch_metric, jax_metric, gap in rows:
        assert abs(float(jax_metric) - float(torch_metric)) <= 2e-3 and abs(float(gap)) <= 2e-3
    assert float(rows[0][1]) < float(rows[-1][1]) and float(rows[-1][1]) > 0.3  # trained: chance is 0.1
