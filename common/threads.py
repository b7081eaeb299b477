"""The thread environment every kronbench process starts with: the one owner of it.

``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads sleep instead of spinning, which on a shared CPU otherwise
steals the cores a trial's own step needs. ``OPENBLAS_NUM_THREADS=1``: numpy's BLAS stays single-threaded
beside torch's pool. Both are read once, when the libraries load, so entry points call ``configure_thread_env``
before they import numpy or torch (this module imports neither). Values set by the user win.
"""

import os
from collections.abc import MutableMapping

QUIET_THREAD_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}


def configure_thread_env(env: MutableMapping[str, str] = os.environ) -> MutableMapping[str, str]:
    """Set each of QUIET_THREAD_ENV in ``env`` where it is unset; returns ``env``."""
    for key, value in QUIET_THREAD_ENV.items():
        env.setdefault(key, value)
    return env
