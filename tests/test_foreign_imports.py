"""What lets published GPU submissions run unmodified: module aliases (one module object under several names)
and CUDA requests served by the CPU. The run of AlgoPerf v0.6's winner itself is a slow test."""

import os
import subprocess
import sys

import pytest
import torch

from compat import aliases
from compat.cuda_on_cpu import CudaOnCpu
from tests.cli_helpers import ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

ARCHIVE = os.path.join(ROOT, "..", "shared", "data", "algoperf", "algoperf_v06_shampoo_submission.tar.xz")


def _package(root, name: str, files: dict[str, str]) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    for file, text in {"__init__.py": "", **files}.items():
        (folder / file).write_text(text)


def test_aliases_give_the_very_module_of_their_target(tmp_path, monkeypatch):
    _package(tmp_path, "vendored/inner", {"types_.py": "class Config:\n    pass\n"})
    (tmp_path / "vendored" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    aliases.install(aliases.parse(["types_=vendored.inner.types_", "home.repo.pkg=", "inner=vendored.inner"]))
    import home.repo.pkg.vendored.inner.types_ as long_name  # the alias of nothing, then the real path
    import inner.types_ as bare_package
    import types_ as bare
    import vendored.inner.types_ as real

    assert bare is real and long_name is real and bare_package is real
    assert isinstance(bare.Config(), real.Config)


@pytest.mark.parametrize("entry", ["noequals", "a..b=c", "=x", "a=b c"])
def test_a_malformed_alias_is_named(entry):
    with pytest.raises(ValueError, match="module alias"):
        aliases.parse([entry])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_cuda_requests_land_on_the_cpu():
    with CudaOnCpu():
        a = torch.zeros(3, device=torch.device("cuda", 1))
        b = torch.ones(2).to("cuda")
        c = torch.ones(2).cuda()
        d = torch.ones(2).to(torch.float64)  # a dtype passes through
    assert {a.device.type, b.device.type, c.device.type} == {"cpu"} and d.dtype == torch.float64
    with pytest.raises((AssertionError, RuntimeError)):  # outside the mode CUDA is still absent
        torch.zeros(1, device="cuda")


@pytest.mark.skipif(not os.path.isfile(ARCHIVE), reason="needs ../shared/data/algoperf")
def test_the_published_point_is_kept_as_published_on_request(tmp_path):
    import json

    from benchmarks import official_shampoo

    folder = official_shampoo.unpack(str(tmp_path))
    published = json.load(open(os.path.join(folder, "tuning_search_space.json")))[0]
    ours = json.load(open(official_shampoo.search_space(folder, str(tmp_path), published=True)))
    assert ours == [published] and published["max_preconditioner_dim"] == 1024
    (mnist,) = json.load(open(official_shampoo.search_space(folder, str(tmp_path))))
    assert mnist == dict(published, max_preconditioner_dim=official_shampoo.MAX_PRECONDITIONER_DIM)


@pytest.mark.skipif(not os.path.isfile(ARCHIVE), reason="needs ../shared/data/algoperf")
def test_on_a_suite_workload_the_winner_runs_through_a_wrapper_with_kronbench_batch_size(tmp_path, monkeypatch):
    import importlib.util
    import tarfile
    import types

    from benchmarks import official_shampoo
    from submissions.recipe import BATCH_SIZES

    folder = official_shampoo.unpack(str(tmp_path))
    assert official_shampoo.submission_for(folder, "mnist") == os.path.join(folder, "submission.py")
    wrapper = official_shampoo.submission_for(folder, "stdlib_lm")
    assert os.path.dirname(wrapper) == folder and os.path.basename(wrapper) != "submission.py"
    with tarfile.open(ARCHIVE) as tar:  # the published file is untouched
        published = tar.extractfile("shampoo/submission.py").read()
    assert open(os.path.join(folder, "submission.py"), "rb").read() == published

    def published_batch_size(name):  # stands in for the published module, which needs its process group to import
        if name != "wmt":
            raise ValueError(f"Unsupported workload name: {name}.")
        return 128

    stand_in = types.ModuleType("submission")
    stand_in.get_batch_size, stand_in.update_params = published_batch_size, object()
    monkeypatch.setitem(sys.modules, "submission", stand_in)
    spec = importlib.util.spec_from_file_location("wrapper_under_test", wrapper)  # not left in sys.modules
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.get_batch_size("stdlib_lm") == BATCH_SIZES["stdlib_lm"] and module.get_batch_size("wmt") == 128
    assert module.update_params is stand_in.update_params
    with pytest.raises(ValueError, match="Unsupported"):
        module.get_batch_size("fashion_vit")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isfile(ARCHIVE), reason="needs ../shared/data/algoperf")
def test_algoperf_v06_winner_runs_unmodified_under_torchrun_with_8_processes(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.official_shampoo", "--steps=20", f"--workdir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mnist / shampoo / trial 1" in proc.stdout and "ran 20 steps" in proc.stdout, proc.stdout
    trial = tmp_path / "experiments" / "official_shampoo" / "mnist_pytorch" / "trial_1"
    assert (trial / "eval_measurements.csv").exists()
