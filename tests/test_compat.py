"""`import algoperf` resolves to the real package when installed, and to kronbench's stand-in otherwise."""

import os
import subprocess
import sys

from tests.cli_helpers import ROOT

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
