"""Exclusive file locks that die with their holder (``flock``), recording who holds them."""

import fcntl
import os
import socket
from contextlib import contextmanager


class LockBusy(RuntimeError):
    """The lock is held by another live process; ``holder`` says which."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


@contextmanager
def exclusive(path: str):
    """Hold ``path`` exclusively for the ``with`` block, or raise LockBusy at once."""
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise LockBusy(f.read().strip() or "an unknown process") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
