"""Preprocessed arrays cached outside the repository (``$KRONBENCH_CACHE`` or ``~/.cache/kronbench``)."""

import os
import zlib
from collections.abc import Callable

import numpy as np

from common.atomic import atomic_open


def cache_dir(name: str) -> str:
    root = os.environ.get("KRONBENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "kronbench")
    path = os.path.join(root, name)
    os.makedirs(path, exist_ok=True)
    return path


def cached_arrays(
    name: str, key: str, build: Callable[[], dict[str, np.ndarray]], code_file: str | None = None
) -> dict[str, np.ndarray]:
    """Arrays saved as ``<cache>/<name>/<key>.npz`` after the first ``build()``; written atomically. With
    ``code_file`` (the loader's own source) the key includes its checksum, so editing the preprocessing
    rebuilds the cache instead of serving stale arrays."""
    if code_file is not None:
        with open(code_file, "rb") as f:
            key = f"{key}-{zlib.crc32(f.read()):08x}"
    path = os.path.join(cache_dir(name), f"{key}.npz")
    if os.path.isfile(path):
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    arrays = build()
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return arrays
