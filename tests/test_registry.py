"""Workload names: the suite's own, and AlgoPerf's official names when the real package is installed (a fake
``algoperf`` with AlgoPerf's registry layout stands in for it, in a subprocess)."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.cli_helpers import ROOT
from workloads.registry import CPU_SUITE, WorkloadError, get_workload

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

FAKE_REGISTRY = """
BASE_WORKLOADS_DIR = "algoperf/workloads/"
WORKLOADS = {"ogbg": {"workload_path": "ogbg/ogbg", "workload_class_name": "OgbgWorkload"}}
"""
FAKE_WORKLOAD = """
class OgbgWorkload:
    official = True
"""


def test_suite_names_resolve_and_unknown_names_list_the_known_ones():
    assert set(CPU_SUITE) == {
        "fashion_resnet",
        "fashion_vit",
        "stdlib_lm",
        "flights_dlrm",
        "qm9_gnn",
        "mri_unet",
        "bible_mt",
        "espeak_asr",
    }
    assert type(get_workload("qm9_gnn")).__name__ == "QM9GNNWorkload"
    with pytest.raises(
        WorkloadError, match=r"unknown workload 'ogbg'; known workloads: bible_mt, espeak_asr, fashion_resnet.*algoperf"
    ):
        get_workload("ogbg")


def test_official_names_resolve_through_the_real_registry(tmp_path):
    package = tmp_path / "algoperf"
    (package / "workloads" / "ogbg" / "ogbg_pytorch").mkdir(parents=True)
    for d in (package / "workloads", package / "workloads" / "ogbg", package / "workloads" / "ogbg" / "ogbg_pytorch"):
        (d / "__init__.py").write_text("")
    # The API modules (spec, pytorch_utils, ...) come from the stand-in; the registry and workload are the fake's.
    shim = os.path.join(ROOT, "compat", "shim", "algoperf")
    (package / "__init__.py").write_text(f"__path__.append({shim!r})\n")
    (package / "workloads" / "workloads.py").write_text(FAKE_REGISTRY)
    (package / "workloads" / "ogbg" / "ogbg_pytorch" / "workload.py").write_text(FAKE_WORKLOAD)
    script = textwrap.dedent(
        """
        from workloads.registry import WorkloadError, get_workload
        w = get_workload("ogbg")
        print(type(w).__module__, w.official)
        print(type(get_workload("mnist")).__module__)
        try:
            get_workload("wmt")
        except WorkloadError as e:
            print(e)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "algoperf.workloads.ogbg.ogbg_pytorch.workload True"
    assert lines[1] == "workloads.mnist.workload"  # the suite's own name wins
    assert (
        "known workloads: bible_mt, espeak_asr, fashion_resnet" in lines[2]
        and "ogbg" in lines[2]
        and "needs the algoperf" not in lines[2]
    )
