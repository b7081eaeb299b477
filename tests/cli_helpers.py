import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NADAMW = os.path.join(ROOT, "submissions", "nadamw", "submission.py")
NADAMW_SPACE = os.path.join(ROOT, "submissions", "nadamw", "tuning_search_space.json")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def run_cli(*args: str, env: dict | None = None, timeout: int = 300, module: str = "runner"):
    """``python -m <module>`` (the runner by default) in a subprocess, from the repository root."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env
    )
