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


HOLDER = ".trial.lock"  # who holds a trial directory; removed when the lock is released


@contextmanager
def exclusive_dir(folder: str, holder: str = HOLDER):
    """Hold ``folder`` exclusively (``flock`` on the directory itself, so taking the lock leaves nothing behind
    once released), or raise LockBusy at once naming the holder. ``folder/<holder>`` names the holder while the
    lock is held."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusy(_read(os.path.join(folder, holder)) or "an unknown process") from None
        info = os.path.join(folder, holder)
        with open(info, "w") as f:
            f.write(f"pid {os.getpid()} on {socket.gethostname()}")
        try:
            yield
        finally:
            if os.path.exists(info):
                os.remove(info)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""
