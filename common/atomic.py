"""The one way kronbench writes a file it must not tear: a temporary file beside it, flushed and fsynced, then
renamed over it (atomic on POSIX), so a kill at any moment leaves the old file or the new one, never half."""

import json
import os
from contextlib import contextmanager
from typing import Any


@contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs):
    """``open(path, mode)`` whose content replaces ``path`` only when the block ends without an exception."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files; mode {mode!r} must be 'w' or 'wb'")
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(os.path.dirname(path) or ".")


def write_json(path: str, obj: Any, indent: int = 2) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, indent=indent, sort_keys=True, default=str)


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable (a crash of the machine, not just of the process)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
