"""The wheel built from pyproject.toml holds every package and its data, and its commands run outside the checkout."""

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from tests.cli_helpers import ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

# Each command and a flag its --help must list (absl's --help lists only the __main__ module's key flags, so each
# __main__ adopts its cli module's).
COMMANDS = {
    "runner": "--submission_path",
    "tuning": "--num_studies",
    "scoring": "--submission_directory",
    "diagnostics": "kron-quality",
}


def _tracked_copy(dest) -> None:
    """The files a fresh clone would have (plus new, not yet committed ones), without venvs, caches or outputs."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for rel in files:
        if os.path.isfile(os.path.join(ROOT, rel)):
            os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), os.path.join(dest, rel))


def test_wheel_runs_outside_the_checkout(tmp_path):  # ~8 s here
    if shutil.which("git") is None or not os.path.exists(os.path.join(ROOT, ".git")):
        pytest.skip("needs a git checkout to list the source files")
    source, wheels, target, cwd = (tmp_path / name for name in ("source", "wheels", "target", "cwd"))
    _tracked_copy(source)
    cwd.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source], check=True)
    (wheel,) = os.listdir(wheels)
    subprocess.run([*pip, "install", "--no-deps", "--target", target, os.path.join(wheels, wheel)], check=True)

    # -S: no site processing, so the venv's editable install (a path entry for the checkout) is not read; the
    # dependencies come from the venv's site-packages, kronbench from the wheel only.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])}

    def python(*args):
        return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=env, capture_output=True, text=True)

    where = python(
        "-c",
        "import importlib, os, sys; "
        f"print({str(ROOT)!r} not in [os.path.abspath(p) for p in sys.path]); "
        "[print(list(importlib.import_module(m).__path__)[0]) for m in "
        f"{(*COMMANDS, 'compat', 'precond', 'workloads', 'submissions', 'submissions.nadamw')!r}]",
    )
    assert where.returncode == 0, where.stderr
    lines = where.stdout.split()
    assert lines[0] == "True" and all(line.startswith(str(target)) for line in lines[1:]), where.stdout
    for name in os.listdir(os.path.join(ROOT, "submissions")):
        space = os.path.join(name, "tuning_search_space.json")
        if os.path.isfile(os.path.join(ROOT, "submissions", space)):
            assert (target / "submissions" / space).is_file(), f"{space} missing from the wheel"
    for command, flag in COMMANDS.items():
        short = python("-m", command, "--help")
        assert short.returncode in (0, 1) and f"python -m {command}" in short.stdout, (command, short.stderr)
        assert flag in short.stdout and "Traceback" not in short.stderr, (command, short.stderr)
