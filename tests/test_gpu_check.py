"""benchmarks/gpu_check.sh: valid bash, a clear failure without a GPU, and (slow) its CPU smoke run end to end."""

import os
import subprocess

import pytest

from tests.cli_helpers import ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.sh")


def run(**env):
    return subprocess.run(
        ["bash", SCRIPT], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=1200
    )


def test_is_valid_bash():
    assert subprocess.run(["bash", "-n", SCRIPT]).returncode == 0


def test_fails_clearly_without_a_gpu():
    proc = run(CUDA_VISIBLE_DEVICES="")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "no CUDA GPU visible" in proc.stderr
    assert "GPU_CHECK_DEVICE=cpu" in proc.stderr


def test_refuses_an_unknown_device():
    proc = run(GPU_CHECK_DEVICE="tpu")
    assert proc.returncode == 2 and "must be cuda or cpu" in proc.stderr


@pytest.mark.slow
def test_cpu_smoke_run_prints_one_table():
    proc = run(GPU_CHECK_DEVICE="cpu", GPU_CHECK_TRIAL_WORKLOADS="mnist", GPU_CHECK_WORKLOADS="mnist")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["| check | workload | result | detail |", "|---|---|---|---|"] and len(lines) == 9
    assert lines[2].startswith("| runner (cpu) | mnist | ok | step 2, validation/loss ")
    assert lines[3].startswith("| DDP trial (2 procs) | mnist | ok | step 2, validation/loss ")  # gloo on CPU
    assert lines[4].startswith("| Shampoo/AdamW step time | mnist (batch 8, as mnist) | ")
    assert "x optimizer step, " in lines[4] and "x training step" in lines[4]
    assert lines[5].startswith("| statistics_precision tests | - | ok | ") and "passed" in lines[5]
    for line, precision in zip(lines[6:], ("highest", "tf32", "bfloat16"), strict=True):
        assert line.startswith(f"| statistics product, {precision} | 2x64x32 | ok | ") and "x highest, error " in line


def test_every_suite_workload_has_a_batch_size_analogue():
    """A default gpu_step_time run covers the whole suite (bible_mt and espeak_asr once raised KeyError), each
    at its AlgoPerf family's batch size where scoring.transfer names one."""
    from benchmarks.gpu_step_time import ANALOGUE
    from scoring.transfer import FAMILIES
    from submissions.recipe import BATCH_SIZES
    from workloads.registry import CPU_SUITE

    assert set(CPU_SUITE) <= set(ANALOGUE)
    assert all(ANALOGUE[w] in BATCH_SIZES for w in ANALOGUE)
    assert {w: ANALOGUE[w] for w, family in FAMILIES.items() if family} == {w: f for w, f in FAMILIES.items() if f}
    assert (ANALOGUE["bible_mt"], ANALOGUE["espeak_asr"]) == ("wmt", "librispeech_conformer")
