from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import os  # noqa: E402
import subprocess  # noqa: E402
import tarfile  # noqa: E402

import pytest  # noqa: E402

import compat  # noqa: E402,F401  (so `import algoperf` resolves in every test module)

SHARED = os.environ.get("KRONBENCH_SHARED", os.path.join(os.path.dirname(os.path.dirname(__file__)), "..", "shared"))
META_ARCHIVE = os.path.join(SHARED, "data", "reference", "meta_distributed_shampoo_f6066066.tar.xz")


@pytest.fixture(scope="session")
def meta_source(tmp_path_factory) -> str:
    """The folder holding Meta's ``distributed_shampoo``, unpacked once from the shipped source (a test fixture:
    ../shared/data/reference, or ``KRONBENCH_SHARED``); the test skips without it."""
    if not os.path.isfile(META_ARCHIVE):
        pytest.skip(f"needs Meta's Distributed Shampoo source at {META_ARCHIVE} (../shared/data/reference)")
    folder = tmp_path_factory.mktemp("meta_reference")
    with tarfile.open(META_ARCHIVE) as tar:
        tar.extractall(folder, filter="data")
    return str(folder)


@pytest.fixture(autouse=True)
def _unit_tier_starts_no_process(request, monkeypatch):
    """A test not marked ``integration`` (or ``slow``) belongs to the unit tier (``make test-unit``, under a
    minute): it may not start a process. Starting one fails the test with the marker to add."""
    if request.node.get_closest_marker("integration") or request.node.get_closest_marker("slow"):
        return

    def refuse(*args, **kwargs):
        raise AssertionError(f"{request.node.nodeid} starts a process: mark it `pytest.mark.integration`")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    monkeypatch.setattr(os, "fork", refuse)
