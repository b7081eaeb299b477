"""A child process that dies with its parent (Linux ``PR_SET_PDEATHSIG``): campaign workers with their coordinator,
torchrun's ranks with torchrun. torchrun starts each rank in a session of its own, so a signal to torchrun's
process group never reaches them; without this they would train on, and write, after their launcher was killed."""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when the process ``parent`` (its parent now) ends; exit at once if it already has.
    A no-op off Linux or for ``parent`` 0 (then the trial lock is what keeps a survivor from doing harm)."""
    if sys.platform != "linux" or not parent:
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
