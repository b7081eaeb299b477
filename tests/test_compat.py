"""`import algoperf` resolves to the real package when installed, and to kronbench's stand-in otherwise."""

import os
import subprocess
import sys

import pytest

from tests.cli_helpers import ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

PROBE = "import compat, algoperf.spec as s, algoperf.pytorch_utils as u; print(s.__file__); print(u.pytorch_setup()[0])"


def probe(pythonpath: str | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LOCAL_RANK")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_stand_in_is_used_without_the_real_package():
    path, use_ddp = probe()
    assert path == os.path.join(ROOT, "compat", "shim", "algoperf", "spec.py") and use_ddp == "False"


def test_real_package_wins_when_installed(tmp_path):
    fake = tmp_path / "algoperf"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "spec.py").write_text("REAL = True\n")
    (fake / "pytorch_utils.py").write_text("def pytorch_setup():\n    return ('real', 0, 'cpu', 0)\n")
    path, use_ddp = probe(str(tmp_path))
    assert path == str(fake / "spec.py") and use_ddp == "real"


def test_enum_values_are_the_official_ones():
    from algoperf import spec

    assert spec.LossType.CTC_LOSS.value == 3 and spec.LossType.MEAN_ABSOLUTE_ERROR.value == 4
    assert spec.ForwardPassMode.EVAL.value == 1
    assert spec.ParameterType.EMBEDDING.value == 7 and spec.ParameterType.ATTENTION_BIAS.value == 14
    assert [t.value for t in spec.ParameterType] == list(range(15))


LEGACY_PROBE = (
    "import compat, algoperf.spec, algorithmic_efficiency.spec as s;"
    "from algorithmic_efficiency import spec; from algorithmic_efficiency.pytorch_utils import pytorch_setup;"
    "import algoperf.pytorch_utils as u;"
    "print(s.__file__); print(s is algoperf.spec and spec is s and pytorch_setup is u.pytorch_setup)"
)


def legacy_probe(pythonpath: str | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LOCAL_RANK")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.run([sys.executable, "-c", LEGACY_PROBE], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def _fake_package(root, name, spec_text="REAL = True\n"):
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "spec.py").write_text(spec_text)
    (package / "pytorch_utils.py").write_text("def pytorch_setup():\n    return ('real', 0, 'cpu', 0)\n")
    return package


def test_old_package_name_is_the_same_stand_in():
    """v0.5-era submissions' ``algorithmic_efficiency`` imports get algoperf's very modules (shared classes)."""
    path, same = legacy_probe()
    assert path == os.path.join(ROOT, "compat", "shim", "algoperf", "spec.py") and same == "True"


def test_old_package_name_follows_a_real_algoperf(tmp_path):
    fake = _fake_package(tmp_path, "algoperf")
    path, same = legacy_probe(str(tmp_path))
    assert path == str(fake / "spec.py") and same == "True"


def test_real_old_package_wins_when_installed(tmp_path):
    fake = _fake_package(tmp_path, "algorithmic_efficiency")
    path, same = legacy_probe(str(tmp_path))
    assert path == str(fake / "spec.py") and same == "False"  # its own modules, not algoperf's


def test_v05_era_submission_loads(tmp_path):
    submission = tmp_path / "submission.py"
    submission.write_text(
        "from algorithmic_efficiency import spec\n"
        "from algorithmic_efficiency.pytorch_utils import pytorch_setup\n"
        "USE_PYTORCH_DDP, RANK, DEVICE, N_GPUS = pytorch_setup()\n"
        "MODE = spec.ForwardPassMode.TRAIN\n"
        "def get_batch_size(workload_name):\n    return 8\n"
        "def init_optimizer_state(*args):\n    pass\n"
        "def update_params(*args):\n    pass\n"
        "def data_selection(*args):\n    pass\n"
    )
    code = (
        "from runner.loading import load_submission; from algoperf import spec;"
        f"s = load_submission({str(submission)!r}); print(s.module.MODE is spec.ForwardPassMode.TRAIN)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LOCAL_RANK")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True"]
