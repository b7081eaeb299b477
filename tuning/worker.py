"""``python -m tuning.worker``: one trial in its own process, the local executor's unit of work.

The TrialSpec arrives as JSON on stdin. The executor pins the process to its cores through
``KRONBENCH_CPUS`` (applied before torch starts its thread pool) and sizes the pool with ``OMP_NUM_THREADS``.
On Linux the worker dies with its coordinator (PR_SET_PDEATHSIG), so killing a campaign stops its trials too;
the trial lock covers other systems. Exit status: 0 committed, 2 a one-line error on stderr, 1 a crash.
"""

import ctypes
import json
import os
import signal
import sys

from common.threads import configure_thread_env  # imports neither numpy nor torch

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    parent = int(os.environ.get("KRONBENCH_PARENT_PID", "0"))
    if sys.platform != "linux" or not parent:
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the coordinator died before prctl took effect
        os._exit(1)


def _pin() -> None:
    cpus = os.environ.get("KRONBENCH_CPUS")
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


def main() -> None:
    _die_with_parent()
    _pin()
    configure_thread_env()
    import compat  # noqa: F401  (algoperf resolves to the stand-in when the package is absent)
    from tuning.plan import TrialSpec
    from tuning.trial import attempt

    result, error = attempt(TrialSpec.from_dict(json.load(sys.stdin)))
    if error is not None:
        print(error, file=sys.stderr)
        sys.exit(2)
    print(result["summary"], flush=True)


if __name__ == "__main__":
    main()
