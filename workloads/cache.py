"""Preprocessed arrays cached outside the repository (``$KRONBENCH_CACHE`` or ``~/.cache/kronbench``)."""

import os
from collections.abc import Callable

import numpy as np


def cache_dir(name: str) -> str:
    root = os.environ.get("KRONBENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "kronbench")
    path = os.path.join(root, name)
    os.makedirs(path, exist_ok=True)
    return path


def cached_arrays(name: str, key: str, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays saved as ``<cache>/<name>/<key>.npz`` after the first ``build()``; written atomically."""
    path = os.path.join(cache_dir(name), f"{key}.npz")
    if os.path.isfile(path):
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    arrays = build()
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays
