"""Byte sequences from the Python standard library's own source, the text every Python install carries.

Files are ``*.py`` under ``sysconfig``'s stdlib directory, skipping site-packages and test suites. A file
belongs to one split by the CRC32 of its relative path (mod 10: 8 is validation, 9 is test, the rest train), so
no file contributes to two splits. A split is its files concatenated in path order and cut into consecutive
windows of ``seq_len + 1`` bytes that overlap by one byte (inputs are a window's first ``seq_len`` bytes, targets
its last ``seq_len``). ``--data_dir`` may point at another source tree to use instead.
"""

import os
import sysconfig
import zlib

import numpy as np

from workloads.cache import cached_arrays
from workloads.registry import WorkloadError

SKIP_DIRS = {"site-packages", "__pycache__", "test", "tests", "idle_test"}
SPLIT_OF_BUCKET = {8: "validation", 9: "test"}


def source_root(data_dir: str = "") -> str:
    root = os.path.expanduser(data_dir) if data_dir else sysconfig.get_paths()["stdlib"]
    if not os.path.isdir(root):
        raise WorkloadError(f"source tree {root!r} not found; pass --data_dir=<a directory of .py files> or omit it")
    return root


def source_files(root: str) -> list[str]:
    """Relative paths of the ``.py`` files under ``root``, sorted, skipping ``SKIP_DIRS``."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in SKIP_DIRS]
        out += [os.path.relpath(os.path.join(d, f), root) for f in files if f.endswith(".py")]
    if not out:
        raise WorkloadError(f"no .py files under {root!r}; pass --data_dir=<a directory of .py files> or omit it")
    return sorted(out)


def split_of(relative_path: str) -> str:
    return SPLIT_OF_BUCKET.get(zlib.crc32(relative_path.encode()) % 10, "train")


def windows(stream: bytes, seq_len: int) -> np.ndarray:
    """(N, seq_len + 1) uint8 windows with stride ``seq_len``; the ragged tail is dropped."""
    flat = np.frombuffer(stream, np.uint8)
    n = (len(flat) - 1) // seq_len
    index = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return flat[index]


def load(seq_len: int, data_dir: str = "") -> dict[str, np.ndarray]:
    """uint8 windows of ``seq_len + 1`` bytes for 'train', 'validation' and 'test'."""
    root = source_root(data_dir)
    files = source_files(root)
    sizes = sum(os.path.getsize(os.path.join(root, f)) for f in files)
    key = f"{zlib.crc32(root.encode()):08x}-{len(files)}-{sizes}-T{seq_len}"
    return cached_arrays("stdlib_lm", key, lambda: _build(root, files, seq_len), __file__)


def _build(root: str, files: list[str], seq_len: int) -> dict[str, np.ndarray]:
    streams: dict[str, list[bytes]] = {"train": [], "validation": [], "test": []}
    for rel in files:
        with open(os.path.join(root, rel), "rb") as f:
            streams[split_of(rel)].append(f.read())
    return {name: windows(b"".join(parts), seq_len) for name, parts in streams.items()}
