"""``python -m tuning.worker``: one trial in its own process, the local executor's unit of work.

The TrialSpec arrives as JSON on stdin. The executor pins the process to its cores through
``KRONBENCH_CPUS`` (applied before torch starts its thread pool) and sizes the pool with ``OMP_NUM_THREADS``.
On Linux the worker dies with its coordinator (PR_SET_PDEATHSIG), so killing a campaign stops its trials too;
the trial lock covers other systems. Exit status: 0 committed, 2 a one-line error on stderr, 1 a crash.

With ``KRONBENCH_PROCS_PER_TRIAL`` = N > 1 the worker runs torchrun (in this process, so it still dies with
the coordinator) launching N copies of itself that read the spec from ``KRONBENCH_TRIAL_SPEC``; each rank dies with
torchrun in turn. Rank 0 prints the summary.
"""

import json
import os
import sys

from common.lifetime import die_with_parent
from common.threads import configure_thread_env  # imports neither numpy nor torch


def _pin() -> None:
    cpus = os.environ.get("KRONBENCH_CPUS")
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


PROCS_ENV, SPEC_ENV = "KRONBENCH_PROCS_PER_TRIAL", "KRONBENCH_TRIAL_SPEC"


def _become_torchrun(spec_text: str, procs: int) -> None:
    """Run torchrun in this process (so it still dies with the coordinator) launching ``procs`` ranks of this
    worker on this machine, and exit with the first failed rank's code. A rank's error line is the report: torchrun's
    own (its ChildFailedError traceback, its agent's warnings) is kept out of the trial's log."""
    os.environ.update({SPEC_ENV: spec_text, "KRONBENCH_PARENT_PID": str(os.getpid())})
    os.environ.setdefault("LOGLEVEL", "ERROR")  # torchrun's agent logging
    del os.environ[PROCS_ENV]
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun(["--standalone", f"--nproc_per_node={procs}", "-m", "tuning.worker"])
    except ChildFailedError as e:
        code = e.get_first_failure()[1].exitcode
        sys.exit(code if code > 0 else 1)
    sys.exit(0)


def main() -> None:
    die_with_parent(int(os.environ.get("KRONBENCH_PARENT_PID", "0")))
    _pin()
    configure_thread_env()
    under_torchrun = SPEC_ENV in os.environ
    spec_text = os.environ[SPEC_ENV] if under_torchrun else sys.stdin.read()
    procs = int(os.environ.get(PROCS_ENV, "1"))
    if procs > 1 and not under_torchrun:
        _become_torchrun(spec_text, procs)
    import compat  # noqa: F401  (algoperf resolves to the stand-in when the package is absent)
    from common.errors import reports_errors
    from tuning.plan import TrialSpec
    from tuning.trial import attempt

    result, error = attempt(TrialSpec.from_dict(json.loads(spec_text)))
    if error is not None:
        if reports_errors():  # under torchrun: rank 0, once
            print(error, file=sys.stderr)
        sys.exit(2)
    if os.environ.get("RANK", "0") == "0":
        print(result["summary"], flush=True)


if __name__ == "__main__":
    main()
