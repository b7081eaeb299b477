"""benchmarks.step_time: each Kronecker variant against AdamW, Meta's Distributed Shampoo right after its kronbench
twin (from the shipped source), and kronbench / Meta per model."""

import os
import re
import subprocess
import sys

import pytest

from benchmarks import meta_shampoo
from tests.cli_helpers import ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)


def run(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "benchmarks.step_time", "--steps", "1", "--models", "mlp", "--no_jax", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(not os.path.isfile(meta_shampoo.ARCHIVE), reason=f"needs Meta's source at {meta_shampoo.ARCHIVE}")
def test_meta_twins_follow_their_kronbench_rows_with_the_same_floor():
    proc = run("--optimizers", "Shampoo", "EShampoo")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split()[0:2] for line in proc.stdout.splitlines() if line.startswith("  ") and "x |" in line]
    names = [" ".join(r) if r[0] == "Meta" else r[0] for r in rows]
    assert names[:4] == ["Shampoo", "Meta Shampoo", "EShampoo", "Meta EShampoo"]
    floors = dict(re.findall(r"^  (\w+(?: \w+)?)\s.*floor\s+([\d.]+) ms", proc.stdout, re.M))
    assert floors["Shampoo"] == floors["Meta Shampoo"] and floors["EShampoo"] == floors["Meta EShampoo"]
    for name in ("Shampoo", "EShampoo"):
        assert re.search(rf"^  {name} / Meta {name}: \d+\.\d\dx optimizer step, \d+\.\d\dx training step$",
                         proc.stdout, re.M)  # fmt: skip


def test_no_meta_leaves_them_out():
    proc = run("--optimizers", "Shampoo", "--no_meta")
    assert proc.returncode == 0, proc.stderr
    assert "Meta" not in proc.stdout and re.search(r"^  Shampoo\s", proc.stdout, re.M)


@pytest.mark.skipif(not os.path.isfile(meta_shampoo.ARCHIVE), reason=f"needs Meta's source at {meta_shampoo.ARCHIVE}")
@pytest.mark.parametrize("name", sorted(meta_shampoo.TWINS.values()))
def test_meta_twins_precondition_at_the_frequency(name):
    """The twin really is Meta's preconditioner: after its first refresh it leaves Adam's path (its grafting or,
    for EShampoo, its own Adam-like start)."""
    import torch

    ds = meta_shampoo.load()
    torch.manual_seed(0)
    w = torch.randn(6, 4)
    runs = []
    for frequency in (2, 1000):  # preconditioned from step 2, and never within the run
        p = torch.nn.Parameter(w.clone())
        opt = meta_shampoo.optimizer(ds, name, [p], lr=1e-2, frequency=frequency, max_dim=8)
        gen = torch.Generator().manual_seed(1)
        for _ in range(4):
            p.grad = torch.randn(6, 4, generator=gen)
            opt.step()
        runs.append(p.detach().clone())
    assert not torch.allclose(runs[0], runs[1], atol=1e-6)
