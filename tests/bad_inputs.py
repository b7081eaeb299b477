"""Running a kronbench command line on bad input, and checking that it failed well.

``run_main`` runs ``python -m <module> <argv>`` in a fork of the test process: modules the test process already
imported (torch, workloads, the MNIST arrays) are shared, so a case costs tens of milliseconds instead of the
seconds a fresh interpreter takes, and each child defines its command's absl flags afresh (two command lines'
flags cannot live in one process). ``run_cli`` (a real subprocess) stays for a few end-to-end cases.
"""

import io
import logging
import os
import runpy
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from tests.cli_helpers import ROOT, run_cli


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def run_main(module: str, argv: list[str], timeout: float = 120) -> Outcome:
    """``python -m module *argv`` in a forked child; its exit code and what it wrote to stdout and stderr."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
            sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
            logging.root.handlers = [logging.StreamHandler(sys.stderr)]  # not pytest's capture
            if "torch" in sys.modules:  # the parent's OpenMP pool does not survive a fork: stay on this thread
                sys.modules["torch"].set_num_threads(1)
            os.chdir(ROOT)
            sys.argv = [module, *argv]
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TimeoutError(f"python -m {module} {' '.join(argv)} ran over {timeout} s")
        time.sleep(0.01)
    texts = []
    for f in (out, err):
        f.seek(0)
        texts.append(f.read().decode(errors="replace"))
        f.close()
    return Outcome(os.waitstatus_to_exitcode(status), *texts)


def run_subprocess(module: str, argv: list[str]) -> Outcome:
    proc = run_cli(*argv, module=module)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under ``root``."""
    out: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = Path(path).read_bytes()
    return out


def changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k, 0) != after.get(k, 0))


def assert_refused(outcome: Outcome, fragment: str) -> None:
    """Exit 2, exactly one stderr line, ``error: ...`` naming ``fragment``, and no traceback."""
    lines = outcome.stderr.strip().splitlines()
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert outcome.returncode == 2, (outcome.returncode, outcome.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr
    assert fragment in lines[0], lines[0]
